"""The Ray Data example (python/examples/ray_embed.py) on a local Ray cluster it starts:
its Parquet vectors must be fastembed 0.9.1's for the same lines and model files."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from conftest import DATA, REPO, model_dir

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_ray_job_writes_the_vectors_embedkit_embed_gives(tmp_path):
    # fastembed's vectors for the corpus, committed by scripts/oracle/gen_expected.py (running
    # fastembed here on these 300 lines took 70 s of this test on a 2-core machine).
    cases = json.loads((REPO / "tests" / "expected" / "cases.json").read_text())
    case = next(c for c in cases["cases"] if c["name"] == "minilm-fp32-corpus")
    path = model_dir("shared", case["dir"].split(":", 1)[1])
    digest = hashlib.sha256((Path(path) / case["model_file"]).read_bytes()).hexdigest()
    assert digest == case["model_file_sha256"], "the expected vectors were made from another model file"
    oracle = np.fromfile(REPO / "tests" / "expected" / case["data_file"], dtype="<f4").reshape(case["shape"])
    # The lines as the oracle script read them.
    lines = (DATA / "corpus.txt").read_text(encoding="utf-8").split("\n")[:-1][:300]
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

    worst = 0.0
    for text, want in zip(lines, oracle):
        assert got[text].shape == want.shape == (384,)
        worst = max(worst, float(np.abs(got[text] - want).max()))
    # The parity tolerance (float32 summed in another order).
    assert worst <= cases["tolerance"], worst
