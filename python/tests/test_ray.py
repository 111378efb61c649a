"""The Ray Data example (python/examples/ray_embed.py) on a local Ray cluster it starts:
its Parquet vectors must be `embedkit embed`'s for the same lines."""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import DATA, REPO, model_dir

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def cli() -> str:
    for profile in ("debug", "release"):
        path = REPO / "target" / profile / "embedkit"
        if path.exists():
            return str(path)
    pytest.fail("no embedkit binary in target/: run `cargo build -p embedkit-cli`", pytrace=False)


def test_ray_job_writes_the_vectors_embedkit_embed_gives(tmp_path):
    path = model_dir("setup", "all-MiniLM-L6-v2-int8")
    lines = (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()[:300]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "vectors"
    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    job = subprocess.run(
        [sys.executable, str(REPO / "python" / "examples" / "ray_embed.py"), "--input", str(corpus),
         "--output", str(out), "--model", MODEL, "--model-path", path, "--actors", "2", "--batch-size", "64"],
        capture_output=True, text=True, timeout=600, env=env)
    assert job.returncode == 0, job.stderr[-3000:]
    table = pq.read_table(out)
    got = {t: np.asarray(v, dtype=np.float32) for t, v in zip(table["text"].to_pylist(), table["embedding"].to_pylist())}
    assert len(table) == len(lines)

    expected = subprocess.run([cli(), "embed", "--model", MODEL, "--model-path", path, "--input", str(corpus)],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(expected) == len(lines)
    worst = 0.0
    for text, line in zip(lines, expected):
        want = np.asarray(json.loads(line)["embedding"], dtype=np.float32)
        worst = max(worst, float(np.abs(got[text] - want).max()))
    # The CLI prints shortest round-trip decimals; the vectors agree to float error.
    assert worst <= 1e-6, worst
