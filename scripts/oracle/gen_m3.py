"""Expected BGE-M3 outputs from FlagEmbedding 1.4.2's `BGEM3FlagModel` on the seeded model
that make_m3.py writes (the `bge-m3` folder: the encoder's weights as safetensors, the
heads as torch checkpoints). Runs in its own venv (torch; `make oracle-m3`).

Writes `bge-m3.json` (texts, dense vectors, lexical weights, ColBERT row counts) and
`bge-m3-colbert.f32` (the stored ColBERT rows, text after text; see kept_rows) into --out.

usage: gen_m3.py --model DIR --data tests/data --out tests/expected
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from FlagEmbedding import BGEM3FlagModel
from safetensors.numpy import load_file

TOLERANCE = 1e-5


def texts(data: Path) -> list:
    corpus = [l for l in (data / "corpus.txt").read_text().splitlines() if l.strip()]
    multilingual = json.loads((data / "multilingual.json").read_text())
    out = [
        "hello world",
        "",
        "the the the library library server the library",  # repeated tokens keep their largest weight
        "Quick test 🦊 with 東京 and ☃ unknown pieces",  # pieces the vocabulary lacks: <unk>
        "  spaces   inside  and trailing ",
        "<s> literal markers </s> in text <pad>",
        " ".join(corpus[:12]),  # long: well over 512 tokens
    ]
    for group in sorted(multilingual):
        out.append(multilingual[group][0])
    out.extend(corpus[20:26])
    return out


def kept_rows(n: int) -> list:
    """The ColBERT rows stored for a text of n rows: all of a short text; of a long one
    the first and last 8 and every 8th (a 1024-wide row is 4 KB)."""
    if n <= 24:
        return list(range(n))
    return sorted(set(range(8)) | set(range(n - 8, n)) | set(range(0, n, 8)))


def encode(model, items: list, batch_size: int) -> dict:
    return model.encode(items, batch_size=batch_size, max_length=1024, return_dense=True,
                        return_sparse=True, return_colbert_vecs=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    # The heads as torch reads them are the arrays make_m3.py wrote (the checkpoint writer
    # is ours, so check it against torch's reader).
    for head in ("colbert_linear", "sparse_linear"):
        state = torch.load(args.model / f"{head}.pt", map_location="cpu", weights_only=True)
        assert set(state) == {"weight", "bias"}, state.keys()
        assert all(t.dtype == torch.float32 for t in state.values())
    model = BGEM3FlagModel(str(args.model), use_fp16=False, devices="cpu", normalize_embeddings=True)
    items = texts(args.data)
    batched = encode(model, items, batch_size=8)
    alone = [encode(model, [t], batch_size=1) for t in items]
    tokenizer = model.tokenizer
    lengths = [len(tokenizer(t)["input_ids"]) for t in items]
    assert max(lengths) > 512, lengths
    dense, sparse, counts, kept, rows = [], [], [], [], []
    for i, t in enumerate(items):
        d = np.asarray(batched["dense_vecs"][i], dtype=np.float32)
        assert np.abs(d - alone[i]["dense_vecs"][0]).max() < TOLERANCE
        dense.append([float(x) for x in d])
        weights = {int(k): float(v) for k, v in batched["lexical_weights"][i].items()}
        single = {int(k): float(v) for k, v in alone[i]["lexical_weights"][0].items()}
        assert weights.keys() == single.keys() and all(abs(weights[k] - single[k]) < TOLERANCE for k in weights)
        keys = sorted(weights)
        sparse.append({"indices": keys, "values": [weights[k] for k in keys]})
        c = np.asarray(batched["colbert_vecs"][i], dtype=np.float32)
        assert c.shape == alone[i]["colbert_vecs"][0].shape and np.abs(c - alone[i]["colbert_vecs"][0]).max() < TOLERANCE
        assert c.shape[0] == lengths[i] - 1, (c.shape, lengths[i])
        counts.append(int(c.shape[0]))
        keep = kept_rows(c.shape[0])
        kept.append(keep)
        rows.append(c[keep])
    args.out.mkdir(parents=True, exist_ok=True)
    np.concatenate(rows).astype("<f4").tofile(args.out / "bge-m3-colbert.f32")
    doc = {"oracle": "FlagEmbedding 1.4.2 BGEM3FlagModel(use_fp16=False, devices='cpu'), "
                     "encode(max_length=1024 (the seeded model's context), batch_size=8); batch_size=1 agrees within tolerance",
           "files": {f: hashlib.sha256((args.model / f).read_bytes()).hexdigest()
                     for f in ("model.safetensors", "colbert_linear.pt", "sparse_linear.pt", "tokenizer.json")},
           "tolerance": TOLERANCE, "dim": int(len(dense[0])), "texts": items, "token_counts": lengths,
           "dense": dense, "sparse": sparse, "colbert_rows": counts, "colbert_kept": kept,
           "colbert_file": "bge-m3-colbert.f32"}
    (args.out / "bge-m3.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(items)} texts, {sum(counts)} ColBERT rows, longest {max(lengths)} tokens")


if __name__ == "__main__":
    main()
