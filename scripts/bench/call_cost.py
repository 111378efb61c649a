"""What one ONNX Runtime call of a model costs besides its tokens, single-threaded:
the time per text at batch 1 and batch 8 for a few sequence lengths, and the operators
that take the time of a call of one token (ONNX Runtime's profiler).

A call streams every weight matrix once, whatever its rows: for all-MiniLM-L6-v2 fp32
that is ~42 MB, which sets a floor under a call of few tokens. This is why a server
holding only a few texts of mixed lengths (a batch cannot pad them together cheaply)
cannot reach the library's rate on a large sorted corpus.

Usage: python scripts/bench/call_cost.py MODEL.onnx
"""

import collections
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: str, profile: bool = False) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.enable_profiling = profile
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feed(s: ort.InferenceSession, rows: int, length: int) -> dict:
    return {i.name: (np.zeros if i.name == "token_type_ids" else np.ones)((rows, length), dtype=np.int64)
            for i in s.get_inputs()}


def main() -> None:
    path = sys.argv[1]
    s = session(path)
    print("| tokens per text | ms per text, batch 1 | ms per text, batch 8 | batch 1 ÷ batch 8 |")
    print("|---|---|---|---|")
    for length in (1, 8, 16, 32, 64, 128):
        per = []
        for rows in (1, 8):
            f = feed(s, rows, length)
            s.run(None, f)
            reps = max(5, 400 // (rows * length))
            t = time.perf_counter()
            for _ in range(reps):
                s.run(None, f)
            per.append((time.perf_counter() - t) / reps / rows * 1000)
        print(f"| {length} | {per[0]:.2f} | {per[1]:.2f} | {per[0] / per[1]:.2f} |")

    p = session(path, profile=True)
    f = feed(p, 1, 1)
    runs = 50
    for _ in range(runs):
        p.run(None, f)
    trace = p.end_profiling()
    with open(trace) as fh:
        events = json.load(fh)
    os.remove(trace)
    by_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    print("\nOne token, one call (profiled; µs per call):\n")
    print("| operator | µs | share |")
    print("|---|---|---|")
    for op, us in by_op.most_common(5):
        print(f"| {op} | {us / runs:.0f} | {us / total:.0%} |")


if __name__ == "__main__":
    main()
