"""One benchmark run of one model family in a package with fastembed's API (fastembed
0.9.1, or an embedkit Python package), in the protocol of crates/embedkit-bench: load,
compute one workload, print one JSON line {load_s, embed_s, docs, checksum}.

Families: dense (TextEmbedding.embed), splade (SparseTextEmbedding.embed), colbert
(LateInteractionTextEmbedding.embed) and rerank (TextCrossEncoder.rerank of one query
against every line)."""

import argparse
import json
import time

STARTED = time.perf_counter()
MODELS = {
    "dense": "sentence-transformers/all-MiniLM-L6-v2",
    "splade": "prithivida/Splade_PP_en_v1",
    "colbert": "colbert-ir/colbertv2.0",
    "rerank": "Xenova/ms-marco-MiniLM-L-6-v2",
}
QUERY = "how do I read a file line by line and handle encoding errors"


def classes(package: str):
    if package == "fastembed":
        from fastembed import LateInteractionTextEmbedding, SparseTextEmbedding, TextEmbedding
        from fastembed.rerank.cross_encoder import TextCrossEncoder
    else:
        from embedkit import LateInteractionTextEmbedding, SparseTextEmbedding, TextCrossEncoder, TextEmbedding
    return {"dense": TextEmbedding, "splade": SparseTextEmbedding, "colbert": LateInteractionTextEmbedding,
            "rerank": TextCrossEncoder}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", choices=["fastembed", "embedkit"], required=True)
    ap.add_argument("--family", choices=list(MODELS), required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--parallel", type=int, default=None)
    ap.add_argument("--precision", choices=["exact", "int8"], default=None, help="embedkit only")
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        docs = f.read().split("\n")[:-1]
    cls = classes(args.package)[args.family]
    extra = {"precision": args.precision} if args.precision else {}
    model = cls(MODELS[args.family], specific_model_path=args.model_dir, threads=args.threads, **extra)
    options = {}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.parallel:
        options["parallel"] = args.parallel
    report = {"load_s": time.perf_counter() - STARTED, "docs": len(docs)}
    t = time.perf_counter()
    checksum, n = 0.0, 0
    if args.family == "rerank":
        for score in model.rerank(QUERY, docs, **options):
            checksum += float(score)
            n += 1
    else:
        for out in model.embed(docs, **options):
            values = out.values if args.family == "splade" else out
            checksum += float(values.sum())
            n += 1
    report["embed_s"] = time.perf_counter() - t
    assert n == len(docs), (n, len(docs))
    report["checksum"] = checksum
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
