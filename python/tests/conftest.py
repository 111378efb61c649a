"""Shared paths for the Python package's tests. Every model folder a test needs must
exist (`make test` creates them); a missing one fails the test and says how to get it."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("EMBEDKIT_HOME", Path.home() / ".cache" / "embedkit"))
SHARED = Path(os.environ.get("SHARED_MODELS", REPO.parent / "shared" / "models"))
TINY = REPO / "target" / "test-models"
DATA = REPO / "tests" / "data"


def model_dir(kind: str, name: str) -> str:
    root = {"setup": HOME / "models", "shared": SHARED, "tiny": TINY}[kind]
    path = root / name
    if not path.is_dir():
        how = {"setup": "run `make setup`", "shared": "the shared models folder (../shared/models) is missing",
               "tiny": "run `make test-models`"}[kind]
        pytest.fail(f"model folder {path} is missing: {how}", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def edge_inputs() -> list[str]:
    return json.loads((DATA / "edge_inputs.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:120]


@pytest.fixture(scope="session")
def images() -> list[str]:
    return [str(p) for p in sorted((DATA / "images").iterdir())]
