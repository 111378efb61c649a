"""A first throughput comparison on one machine, in one run: embedkit's CLI against
fastembed 0.9.1 on the same model file, thread count and corpus, alternating runs,
median of several repetitions. Each run is a whole process, timed from start to the last
vector (so model loading counts for both); peak RSS comes from the kernel (wait4).

The full benchmark suite (latency percentiles, fastembed-rs, 512-token documents,
BENCHMARKS.md) is issue 9; this is the seed it grows from.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FASTEMBED = r"""
import sys
from fastembed import TextEmbedding
m = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=sys.argv[1], threads=2)
docs = open(sys.argv[2]).read().split("\n")[:-1]
n = sum(1 for _ in m.embed(docs, batch_size=int(sys.argv[3])))
assert n == len(docs)
"""


def run(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--embedkit", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n_docs = sum(1 for _ in open(args.corpus))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(FASTEMBED)
        script = f.name
    contenders = {
        "embedkit (defaults)": [args.embedkit, "embed", "--model", "sentence-transformers/all-MiniLM-L6-v2",
                                "--model-path", args.model_dir, "--threads", "2", "--input", args.corpus],
        "fastembed batch 16": [sys.executable, script, args.model_dir, args.corpus, "16"],
        "fastembed batch 1": [sys.executable, script, args.model_dir, args.corpus, "1"],
    }
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in contenders}
    for _ in range(args.repeat):
        for name, cmd in contenders.items():
            results[name].append(run(cmd))
    base = statistics.median(t for t, _ in results["embedkit (defaults)"])
    print(f"{n_docs} documents, all-MiniLM-L6-v2 from {args.model_dir}, 2 threads, "
          f"median of {args.repeat} runs\n")
    print(f"{'contender':<22} {'docs/s':>8} {'peak RSS MB':>12} {'embedkit speedup':>17}")
    for name, runs in results.items():
        t = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs) / 2**20
        print(f"{name:<22} {n_docs / t:>8.1f} {rss:>12.0f} {t / base:>16.2f}x")
    os.unlink(script)


if __name__ == "__main__":
    main()
