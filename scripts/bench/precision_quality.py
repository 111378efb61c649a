"""Quality of embedkit's int8 tier against its exact tier (issue 19's floors), per family,
on the benchmark's own paragraphs: one process, both tiers loaded through the Python
package. Prints one JSON object; scripts/bench/families.py puts it in the precision table.

- dense: cosine of each paragraph's int8 vector to its exact one (mean, worst), and the
  share of each paragraph's 10 nearest paragraphs (by cosine, itself excluded) kept;
- splade: the share of each paragraph's 20 heaviest terms kept;
- colbert: per query, the share of the 10 best paragraphs by MaxSim kept;
- rerank: per query, Spearman's correlation of the scores over the paragraphs.
"""

import argparse
import json

import numpy as np

from run_family import MODELS


def load(family, folder, precision, threads):
    import embedkit

    cls = {"dense": embedkit.TextEmbedding, "splade": embedkit.SparseTextEmbedding,
           "colbert": embedkit.LateInteractionTextEmbedding, "rerank": embedkit.TextCrossEncoder}[family]
    return cls(MODELS[family], specific_model_path=folder, threads=threads, precision=precision)


def kept(a, b, k):
    return len(set(a[:k]) & set(b[:k])) / max(1, min(k, len(a)))


def dense(models, docs, queries):
    exact, int8 = (np.stack(list(m.embed(docs))) for m in models)
    cos = (exact * int8).sum(1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(int8, axis=1))

    def neighbours(v):
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :10]

    ne, ni = neighbours(exact), neighbours(int8)
    share = float(np.mean([kept(list(a), list(b), 10) for a, b in zip(ne, ni)]))
    return {"mean_cos": float(cos.mean()), "worst_cos": float(cos.min()), "top10_kept": share}


def splade(models, docs, queries):
    exact, int8 = (list(m.embed(docs)) for m in models)
    top = lambda s: list(np.asarray(s.indices)[np.argsort(-np.asarray(s.values), kind="stable")][:20])
    return {"top20_terms_kept": float(np.mean([kept(top(a), top(b), 20) for a, b in zip(exact, int8)]))}


def colbert(models, docs, queries):
    outs = []
    for m in models:
        d = list(m.embed(docs))
        q = list(m.query_embed(queries))
        scores = np.array([[float((qv @ dv.T).max(1).sum()) for dv in d] for qv in q])
        outs.append(np.argsort(-scores, axis=1)[:, :10])
    shares = [kept(list(a), list(b), 10) for a, b in zip(*outs)]
    return {"maxsim_top10_kept_mean": float(np.mean(shares)), "maxsim_top10_kept_worst": float(min(shares))}


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def rerank(models, docs, queries):
    rho = []
    for q in queries:
        exact, int8 = (np.array(list(m.rerank(q, docs))) for m in models)
        rho.append(spearman(exact, int8))
    return {"spearman_mean": float(np.mean(rho)), "spearman_worst": float(min(rho))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=list(MODELS), required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--input", required=True, help="paragraphs, one per line")
    ap.add_argument("--queries", required=True, help="queries, one per line")
    ap.add_argument("--num-queries", type=int, default=10)
    ap.add_argument("--rerank-docs", type=int, default=100, help="paragraphs per query for rerank")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        docs = f.read().split("\n")[:-1]
    with open(args.queries, encoding="utf-8") as f:
        queries = [q for q in f.read().split("\n") if q.strip()][: args.num_queries]
    # int8 first: it makes (or reuses) the cached int8 file before the timed runs.
    int8 = load(args.family, args.model_dir, "int8", args.threads)
    models = (load(args.family, args.model_dir, "exact", args.threads), int8)
    if args.family == "rerank":
        docs = docs[: args.rerank_docs]
    fn = {"dense": dense, "splade": splade, "colbert": colbert, "rerank": rerank}[args.family]
    print(json.dumps(fn(models, docs, queries)), flush=True)


if __name__ == "__main__":
    main()
