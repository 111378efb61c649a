"""Expected outputs of the test family (`twin`, cargo feature `test-family`): the seeded
`twin-64` model that make_models.py writes, run by ONNX Runtime on token ids from Hugging
Face `tokenizers` (truncated at the model's 128 tokens), one text at a time so that no
padding is involved. The family's rules, computed here independently of embedkit:

- dense: the graph's `dense` output row, as is;
- sparse: the positive entries of the graph's `sparse` output row, indices ascending.

Writes `twin.json` into --out.

usage: gen_twin.py --model DIR --data tests/data --out tests/expected
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TOLERANCE = 1e-5
MAX_LENGTH = 128


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    texts = json.loads((args.data / "edge_inputs.json").read_text())
    corpus = [l for l in (args.data / "corpus.txt").read_text().splitlines() if l.strip()]
    texts = texts + corpus[:12]
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH)
    session = ort.InferenceSession(str(args.model / "model.onnx"), providers=["CPUExecutionProvider"])
    dense, sparse, counts = [], [], []
    for text in texts:
        ids = np.array([tok.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        d, s = session.run(["dense", "sparse"], feed)
        dense.append([float(x) for x in d[0]])
        (indices,) = np.nonzero(s[0] > 0)
        sparse.append({"indices": [int(i) for i in indices], "values": [float(s[0][i]) for i in indices]})
        counts.append(int(ids.shape[1]))
    model_sha = hashlib.sha256((args.model / "model.onnx").read_bytes()).hexdigest()
    out = {
        "model": "embedkit/test-twin",
        "folder": args.model.name,
        "model_sha256": model_sha,
        "tolerance": TOLERANCE,
        "texts": texts,
        "token_counts": counts,
        "dense": dense,
        "sparse": sparse,
    }
    (args.out / "twin.json").write_text(json.dumps(out, indent=None, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} texts to {args.out / 'twin.json'}")


if __name__ == "__main__":
    main()
