"""Shared by the integration tests: a model cache in fastembed's layout, filled from the
real model files of this machine, and a runner that executes one scenario with the real
fastembed or with embedkit installed as fastembed, in a fresh interpreter."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_MODELS", REPO.parent / "shared" / "models"))
COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Registry name -> (hub repo fastembed fetches it from, folder with its files, model file).
MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("Qdrant/all-MiniLM-L6-v2-onnx", "all-MiniLM-L6-v2-fp32", "model.onnx"),
    "prithivida/Splade_PP_en_v1": ("Qdrant/Splade_PP_en_v1", "splade-tiny", "model.onnx"),
}


def fill_cache(cache: Path) -> Path:
    """huggingface_hub's layout (blobs, snapshot links, refs/main), as a download by
    fastembed would leave it."""
    for repo, folder, _ in MODELS.values():
        src = SHARED / folder
        if not src.is_dir():
            pytest.fail(f"{src} is missing: the shared models folder must be present", pytrace=False)
        root = cache / ("models--" + repo.replace("/", "--"))
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        snapshot = root / "snapshots" / COMMIT
        snapshot.mkdir(parents=True, exist_ok=True)
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text(COMMIT)
        for f in sorted(src.iterdir()):
            if f.name == "README.md":
                continue
            data = f.read_bytes()
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            link = snapshot / f.name
            if not link.exists():
                link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return cache


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fastembed_cache")
    path.chmod(0o700)
    return fill_cache(path)


PRELUDE = """
import json, sys
if sys.argv[1] == "embedkit":
    import embedkit
    embedkit.install_as_fastembed()
import fastembed
assert ("embedkit" in fastembed.__version__) == (sys.argv[1] == "embedkit"), fastembed.__version__
"""


def run(scenario: str, library: str, cache: Path):
    """Runs `scenario` (which prints one JSON value last) on `library`, offline, with
    fastembed's default cache pointed at `cache`."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", FASTEMBED_CACHE_PATH=str(cache), TOKENIZERS_PARALLELISM="false")
    script = PRELUDE + textwrap.dedent(scenario)
    out = subprocess.run([sys.executable, "-c", script, library, str(cache)], capture_output=True, text=True,
                         env=env, timeout=600, cwd=str(REPO))
    assert out.returncode == 0, f"{library}: {out.stderr[-4000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])
