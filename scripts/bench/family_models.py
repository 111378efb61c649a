"""Models of real size for the family benchmark (scripts/bench/families.py), built from
the real all-MiniLM-L6-v2 fp32 graph: the encoder every family below runs is that
6-layer BERT, with the head each family reads, its weights from a fixed seed.

- colbert-minilm: the encoder's token vectors through a 384x128 projection, as
  colbert-ir/colbertv2.0 (input_ids, attention_mask; token types are zeros inside the
  graph, since fastembed feeds ColBERT none that fit).
- rerank-minilm: the [CLS] vector through a 384x1 layer, one logit per pair, as
  Xenova/ms-marco-MiniLM-L-6-v2 (itself a MiniLM-L6 cross-encoder).
- splade-minilm: the token vectors through a 384x30522 layer to vocabulary logits, as
  a SPLADE model's masked-language head (input_ids, attention_mask, token_type_ids;
  output `logits`). Its bias is the logit that 0.003% of a few sample texts' token
  logits exceed, so that the benchmark corpus's paragraphs expand to ~160 terms
  (splade-tiny: ~85), as a trained model's do, not to half the vocabulary. For token
  budgets on a model whose encoder is not tiny beside its head.

SPLADE also runs on ../shared/models/splade-tiny, a real trained SPLADE model, as it is.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json"]


def head(graph: onnx.GraphProto, nodes: list, initializers: list, output: onnx.ValueInfoProto) -> None:
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    del graph.output[:]
    graph.output.append(output)


def colbert(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    g = model.graph
    # Token types become zeros of the ids' shape inside the graph.
    kept = [i for i in g.input if i.name != "token_type_ids"]
    del g.input[:]
    g.input.extend(kept)
    zeros = numpy_helper.from_array(np.zeros(1, dtype=np.int64), "tt_zero")
    g.node.insert(0, helper.make_node("Shape", ["input_ids"], ["tt_shape"]))
    g.node.insert(1, helper.make_node("ConstantOfShape", ["tt_shape"], ["token_type_ids"], value=zeros))
    w = numpy_helper.from_array((rng.standard_normal((384, 128)) / np.sqrt(384)).astype(np.float32), "colbert_w")
    head(g, [helper.make_node("MatMul", ["last_hidden_state", "colbert_w"], ["colbert_out"])], [w],
         helper.make_tensor_value_info("colbert_out", TensorProto.FLOAT, ["batch", "sequence", 128]))
    return model


def rerank(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    g = model.graph
    first = numpy_helper.from_array(np.array(0, dtype=np.int64), "cls_index")
    w = numpy_helper.from_array((rng.standard_normal((384, 1)) / np.sqrt(384)).astype(np.float32), "rank_w")
    b = numpy_helper.from_array(np.zeros(1, dtype=np.float32), "rank_b")
    nodes = [
        helper.make_node("Gather", ["last_hidden_state", "cls_index"], ["cls"], axis=1),
        helper.make_node("MatMul", ["cls", "rank_w"], ["rank_mm"]),
        helper.make_node("Add", ["rank_mm", "rank_b"], ["logits"]),
    ]
    head(g, nodes, [first, w, b], helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1]))
    return model


def splade(model: onnx.ModelProto, rng: np.random.Generator, src: Path) -> onnx.ModelProto:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    # The bias: the logit that 0.003% of the sample texts' token logits exceed.
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    sess = ort.InferenceSession(str(src / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = ["the capital of france is paris", "a short note on embedding models and their heads",
             "numbers 12 and 345 in a sentence", "SPLADE expands a text to weighted vocabulary terms"]
    w = (rng.standard_normal((384, 30522)) / np.sqrt(384)).astype(np.float32)
    logits = []
    for t in texts:
        e = tok.encode(t)
        feed = {"input_ids": np.array([e.ids], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids], dtype=np.int64)}
        h = sess.run(["last_hidden_state"], feed)[0][0]
        logits.append(h @ w)
    cut = float(np.quantile(np.concatenate(logits), 0.99997))
    g = model.graph
    b = numpy_helper.from_array(np.full(30522, -cut, dtype=np.float32), "mlm_b")
    w = numpy_helper.from_array(w, "mlm_w")
    nodes = [helper.make_node("MatMul", ["last_hidden_state", "mlm_w"], ["mlm_mm"]),
             helper.make_node("Add", ["mlm_mm", "mlm_b"], ["logits"])]
    head(g, nodes, [w, b], helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", 30522]))
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", required=True, help="the all-MiniLM-L6-v2 fp32 folder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    src, out = Path(args.minilm), Path(args.out)
    for name, build, model_file in [("colbert-minilm", colbert, "model.onnx"),
                                    ("rerank-minilm", rerank, "onnx/model.onnx"),
                                    ("splade-minilm", lambda m, r: splade(m, r, src), "model.onnx")]:
        dest = out / name
        if (dest / model_file).is_file():
            continue
        (dest / model_file).parent.mkdir(parents=True, exist_ok=True)
        model = build(onnx.load(str(src / "model.onnx")), np.random.default_rng(7))
        onnx.checker.check_model(model)
        tmp = dest / (model_file + ".tmp")
        onnx.save(model, str(tmp))
        for f in TOKENIZER_FILES:
            shutil.copyfile(src / f, dest / f)
        tmp.rename(dest / model_file)
        print(f"family_models: {dest / model_file}")


if __name__ == "__main__":
    main()
