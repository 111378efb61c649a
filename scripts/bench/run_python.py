"""One benchmark run of a Python package with fastembed's API — fastembed 0.9.1 itself or
embedkit's Python package — in the protocol of crates/embedkit-bench: load, embed one
workload, print one JSON line."""

import argparse
import json
import sys
import time

STARTED = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--workload", choices=["docs", "queries", "cold"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--package", choices=["fastembed", "embedkit"], default="fastembed")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--parallel", type=int, default=None)
    args = ap.parse_args()
    if args.package == "fastembed":
        from fastembed import TextEmbedding

        embed_options = {"batch_size": args.batch_size or 256, "parallel": args.parallel}
        load_options = {}
    else:
        from embedkit import TextEmbedding

        # embedkit's sessions are chosen when the model is built.
        embed_options = {"batch_size": args.batch_size}
        load_options = {"parallel": args.parallel}

    with open(args.input, encoding="utf-8") as f:
        docs = f.read().split("\n")[:-1]
    model = TextEmbedding(args.model, specific_model_path=args.model_dir, threads=args.threads, **load_options)
    report = {"load_s": time.perf_counter() - STARTED, "docs": len(docs)}
    if args.workload == "cold":
        v = next(iter(model.embed(docs[:1])))
        report["checksum"] = float(v.sum())
    elif args.workload == "queries":
        lat = []
        for q in docs:
            t = time.perf_counter()
            list(model.embed([q]))
            lat.append((time.perf_counter() - t) * 1e3)
        report["latencies_ms"] = lat
    else:
        t = time.perf_counter()
        n, checksum = 0, 0.0
        for v in model.embed(docs, **embed_options):
            checksum += float(v.sum())
            n += 1
        report["embed_s"] = time.perf_counter() - t
        assert n == len(docs), (n, len(docs))
        report["checksum"] = checksum
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
