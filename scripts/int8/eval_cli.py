# Issue 19 (not run by CI): int8 quality of a candidate model folder against a reference
# folder's exact vectors, through the embedkit CLI (target/release/embedkit).
# Usage: eval_cli.py dense|late REF_DIR CAND_DIR [exact|int8]
#   dense: all-MiniLM-L6-v2 shape, tests/data/corpus.txt lines 0-600: mean / worst cosine and
#          top-10 neighbours kept.
#   late:  ColBERT shape, the first 500 paragraphs and 50 queries of the bench corpus
#          (make bench-families makes target/bench): MaxSim top-10 kept per query.
import json, subprocess, sys, tempfile, numpy as np

E = "target/release/embedkit"
family, ref, cand = sys.argv[1:4]
precision = sys.argv[4] if len(sys.argv) > 4 else "exact"
tmp = tempfile.mkdtemp(prefix="eval-cli-")


def run(cmd, model, md, prec, lines, extra=()):
    inp = f"{tmp}/in.txt"
    open(inp, "w").write("\n".join(lines) + "\n")
    out = f"{tmp}/out.jsonl"
    subprocess.run([E, cmd, "-m", model, "--model-path", md, "--precision", prec, "--quiet",
                    "-i", inp, "-o", out, *extra], check=True)
    return [json.loads(line) for line in open(out)]


def top10(scores):
    return np.argsort(-scores, 1)[:, :10]


def kept(a, b):
    return [len(set(x) & set(y)) / 10 for x, y in zip(a, b)]


if family == "dense":
    docs = open("tests/data/corpus.txt").read().splitlines()[:600]
    name = "sentence-transformers/all-MiniLM-L6-v2"
    a, b = (np.array([r["embedding"] for r in run("embed", name, md, p, docs)], dtype=np.float64)
            for md, p in ((ref, "exact"), (cand, precision)))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    cos = np.sum(a * b, 1)
    sims = [x @ x.T - 9 * np.eye(len(x)) for x in (a, b)]
    k = kept(top10(sims[0]), top10(sims[1]))
    print(f"mean cos {cos.mean():.4f} worst {cos.min():.4f} top-10 kept {100 * np.mean(k):.1f}%")
else:
    docs = open("target/bench/corpus.txt").read().splitlines()[:500]
    queries = open("target/bench/queries.txt").read().splitlines()[:50]
    name = "colbert-ir/colbertv2.0"
    ranks = []
    for md, p in ((ref, "exact"), (cand, precision)):
        d = [np.array(r["embeddings"], np.float32) for r in run("late", name, md, p, docs)]
        q = [np.array(r["embeddings"], np.float32) for r in run("late", name, md, p, queries, ["--query"])]
        ranks.append(top10(np.array([[float((qv @ dv.T).max(1).sum()) for dv in d] for qv in q])))
    k = kept(*ranks)
    print(f"MaxSim top-10 kept {100 * np.mean(k):.1f}% worst query {100 * min(k):.0f}%")
