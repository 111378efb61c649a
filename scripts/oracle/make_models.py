"""Builds small seeded ONNX text models, one per pipeline embedkit and fastembed share.

Each model has a real architecture shape (token, position and type embeddings, layer norm,
one self-attention block with the attention mask, a feed-forward block) and the input and
output names of the real exports it stands for, with weights drawn from a fixed seed. The
tokenizer files are those of all-MiniLM-L6-v2 (`--tokenizer-dir`), with the configs each
variant needs. The same seed gives the same files, so tests can check their sha256.

usage: make_models.py --tokenizer-dir DIR --out DIR
"""

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from make_m3 import m3_texts, write_m3

VOCAB = 30522
HIDDEN = 32
FFN = 64
MAX_POS = 4096
OPSET = 17


class Graph:
    """Accumulates nodes and seeded initializers of one model."""

    def __init__(self, seed: int):
        self.rng = np.random.RandomState(seed)
        self.nodes = []
        self.inits = []
        self.count = 0

    def weight(self, name, shape, scale=0.2):
        arr = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def named(self, op_type, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [name], **attrs))
        return name

    def layer_norm(self, x, prefix):
        g = self.const(f"{prefix}.gamma", (1.0 + self.rng.standard_normal(HIDDEN) * 0.1).astype(np.float32))
        b = self.const(f"{prefix}.beta", (self.rng.standard_normal(HIDDEN) * 0.1).astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-12)


def build(variant: dict, seed: int) -> onnx.ModelProto:
    g = Graph(seed)
    dim = variant["dim"]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    if variant.get("attention_mask", True):
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]))
    if variant.get("token_type_ids", True):
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"]))
    if variant.get("task_id"):
        inputs.append(helper.make_tensor_value_info("task_id", TensorProto.INT64, []))

    x = g.op("Gather", [g.weight("word_embeddings", (variant.get("vocab", VOCAB), HIDDEN)), "input_ids"])
    # position embeddings for positions 0..seq-1
    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const("one_idx", np.array([1], dtype=np.int64))], axis=0)
    zero = g.const("zero_1d", np.array([0], dtype=np.int64))
    table = g.weight("position_embeddings", (MAX_POS, HIDDEN))
    if variant.get("positions_from_mask"):
        # positions count real tokens only (cumsum of the mask - 1), as decoders do for
        # left-padded batches, so that a sequence's vectors do not depend on its padding
        ids = g.op("Sub", [g.op("CumSum", ["attention_mask", g.const("cum_axis", np.array(1, dtype=np.int64))]),
                           g.const("one_i", np.array(1, dtype=np.int64))])
        ids = g.op("Max", [ids, g.const("zero_i", np.array(0, dtype=np.int64))])
        pos = g.op("Gather", [table, ids])
    else:
        pos = g.op("Slice", [table, zero, seq, zero])
    x = g.op("Add", [x, pos])
    if variant.get("token_type_ids", True):
        tt = g.op("Gather", [g.weight("token_type_embeddings", (2, HIDDEN), scale=1.0), "token_type_ids"])
        x = g.op("Add", [x, tt])
    if variant.get("task_id"):
        task = g.op("Gather", [g.weight("task_embeddings", (5, HIDDEN), scale=1.0), "task_id"])
        x = g.op("Add", [x, task])
    x = g.layer_norm(x, "emb_ln")

    # single-head self-attention, padding masked out with a large negative bias
    q = g.op("MatMul", [x, g.weight("wq", (HIDDEN, HIDDEN))])
    k = g.op("MatMul", [x, g.weight("wk", (HIDDEN, HIDDEN))])
    v = g.op("MatMul", [x, g.weight("wv", (HIDDEN, HIDDEN))])
    kt = g.op("Transpose", [k], perm=[0, 2, 1])
    scores = g.op("Div", [g.op("MatMul", [q, kt]), g.const("sqrt_h", np.array(np.sqrt(HIDDEN), dtype=np.float32))])
    if variant.get("attention_mask", True):
        m = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        m = g.op("Unsqueeze", [m, g.const("axis1", np.array([1], dtype=np.int64))])
        bias = g.op("Mul", [g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), m]),
                            g.const("neg_big", np.array(-10000.0, dtype=np.float32))])
        scores = g.op("Add", [scores, bias])
    probs = g.op("Softmax", [scores], axis=-1)
    ctx = g.op("MatMul", [g.op("MatMul", [probs, v]), g.weight("wo", (HIDDEN, HIDDEN))])
    x = g.layer_norm(g.op("Add", [x, ctx]), "attn_ln")
    h = g.op("Relu", [g.op("Add", [g.op("MatMul", [x, g.weight("w1", (HIDDEN, FFN))]), g.weight("b1", (FFN,))])])
    x = g.layer_norm(g.op("Add", [x, g.op("MatMul", [h, g.weight("w2", (FFN, HIDDEN))])]), "ffn_ln")
    hidden = g.op("MatMul", [x, g.weight("proj", (HIDDEN, dim))])
    if "logit_bias" in variant:
        # most vocabulary logits negative, so SPLADE vectors stay sparse like real ones
        hidden = g.op("Add", [hidden, g.const("logit_bias", np.array(variant["logit_bias"], dtype=np.float32))])

    outputs = []
    for out in variant["outputs"]:
        if out in ("last_hidden_state", "logits"):
            g.named("Identity", [hidden], out)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", "seq", dim]))
        elif out in ("text_embeds", "pooler_output", "pooled_first"):
            # a pooled 2-D output: tanh of the first token, or the last position (siglip)
            index = -1 if out == "pooler_output" else 0
            token = g.op("Gather", [hidden, g.const(f"pos_{out}", np.array(index, dtype=np.int64))], axis=1)
            g.named("Tanh", [g.op("MatMul", [token, g.weight(f"w_{out}", (dim, dim), scale=0.1)])], out)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", dim]))
        elif out == "rank_logits":
            # a cross-encoder head: one relevance logit from the first token
            token = g.op("Gather", [hidden, g.const("pos_rank", np.array(0, dtype=np.int64))], axis=1)
            g.named("MatMul", [g.op("Tanh", [token]), g.weight("w_rank", (dim, 1), scale=0.5)], "logits")
            outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1]))
        elif out == "sentence_embedding":
            # mean over real tokens, normalized in the graph (sentence-transformers exports)
            m = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                                   g.const("axis2", np.array([2], dtype=np.int64))])
            summed = g.op("ReduceSum", [g.op("Mul", [hidden, m]), g.const("axes1", np.array([1], dtype=np.int64))], keepdims=0)
            count = g.op("ReduceSum", [m, g.const("axes1b", np.array([1], dtype=np.int64))], keepdims=0)
            mean = g.op("Div", [summed, count])
            g.named("LpNormalization", [mean], "sentence_embedding", axis=-1, p=2)
            outputs.append(helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", dim]))
        elif out == "dense":
            # the test family's first output: mean over real tokens, L2-normalized
            m = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                                   g.const("axis2d", np.array([2], dtype=np.int64))])
            summed = g.op("ReduceSum", [g.op("Mul", [hidden, m]), g.const("axes1d", np.array([1], dtype=np.int64))], keepdims=0)
            count = g.op("ReduceSum", [m, g.const("axes1e", np.array([1], dtype=np.int64))], keepdims=0)
            g.named("LpNormalization", [g.op("Div", [summed, count])], "dense", axis=-1, p=2)
            outputs.append(helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", dim]))
        elif out == "sparse":
            # its second: relu(vocabulary logits - 5), max over real tokens (a few hundred
            # positive weights a text, like a SPLADE vector)
            logits = g.op("Add", [g.op("MatMul", [hidden, g.weight("w_vocab", (dim, VOCAB))]),
                                  g.const("vocab_bias", np.array(-5.0, dtype=np.float32))])
            m = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                                   g.const("axis2s", np.array([2], dtype=np.int64))])
            weights = g.op("Mul", [g.op("Relu", [logits]), m])
            g.named("ReduceMax", [weights], "sparse", axes=[1], keepdims=0)
            outputs.append(helper.make_tensor_value_info("sparse", TensorProto.FLOAT, ["batch", VOCAB]))
        else:
            raise ValueError(out)

    graph = helper.make_graph(g.nodes, f"tiny_{variant['name']}", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="embedkit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# name -> architecture and files. `files` maps the registry's model_file (and its external
# data, if the registry lists one) to where the variant is saved.
VARIANTS = [
    dict(name="cls-384", dim=384, outputs=["last_hidden_state"], model_file="model_optimized.onnx"),
    dict(name="cls-768-trunc16-notype", dim=768, outputs=["last_hidden_state"], token_type_ids=False,
         model_file="model_optimized.onnx", tokenizer_config={"model_max_length": 16}),
    dict(name="mean-768", dim=768, outputs=["last_hidden_state"], model_file="onnx/model.onnx"),
    dict(name="mean-384-trunc128", dim=384, outputs=["last_hidden_state"], model_file="model_optimized.onnx",
         tokenizer_config={"model_max_length": 128}),
    dict(name="meannorm-512-notype", dim=512, outputs=["last_hidden_state"], token_type_ids=False,
         model_file="onnx/model.onnx"),
    dict(name="lasttoken-1024-left", dim=1024, outputs=["last_hidden_state"], token_type_ids=False,
         model_file="onnx/model_quantized.onnx", tokenizer_config={"padding_side": "left"},
         positions_from_mask=True),
    dict(name="builtin-384", dim=384, outputs=["last_hidden_state", "sentence_embedding"],
         model_file="onnx/model.onnx", external_data="model.onnx_data"),
    dict(name="clip-512", dim=512, outputs=["text_embeds", "last_hidden_state"], model_file="model.onnx",
         token_type_ids=False),
    dict(name="pooled2d-768", dim=768, outputs=["text_embeds", "last_hidden_state"],
         model_file="onnx/text_model.onnx", token_type_ids=False),
    dict(name="siglip-768", dim=768, outputs=["last_hidden_state", "pooler_output"],
         model_file="onnx/text_model.onnx", token_type_ids=False, attention_mask=False,
         tokenizer_config={"model_max_length": 64}),
    dict(name="jina3-1024", dim=1024, outputs=["last_hidden_state"], task_id=True, token_type_ids=False,
         model_file="onnx/model.onnx", external_data="model.onnx_data"),
    # a masked-LM head over the whole vocabulary (SPLADE), with an IDF table for the
    # inference-free opensearch models
    dict(name="mlm-30522", dim=VOCAB, outputs=["logits"], model_file="model.onnx", idf=True, logit_bias=-4.0,
         tokenizer_config={"model_max_length": 128}),
    # ColBERT-style token encoders: no token_type_ids, an embedding row for each marker id
    dict(name="colbert-128", dim=128, outputs=["last_hidden_state"], token_type_ids=False, model_file="model.onnx"),
    dict(name="colbert-96-trunc32", dim=96, outputs=["last_hidden_state"], token_type_ids=False,
         model_file="vespa_colbert.onnx", tokenizer_config={"model_max_length": 32}),
    dict(name="jinacolbert-128", dim=128, outputs=["last_hidden_state"], token_type_ids=False, vocab=250004,
         model_file="onnx/model.onnx", external_data="model.onnx_data", special_tokens={"mask_token": "<mask>"}),
    dict(name="lateon-128", dim=128, outputs=["last_hidden_state"], token_type_ids=False, vocab=50370,
         model_file="model.onnx", tokenizer_config={"model_max_length": 300}),
    dict(name="mlateon-128", dim=128, outputs=["last_hidden_state"], token_type_ids=False, vocab=256002,
         model_file="model.onnx", special_tokens={"mask_token": "<mask>"}),
    # cross-encoders: a relevance logit [batch, 1], with and without token_type_ids
    dict(name="rerank-bert", dim=64, outputs=["rank_logits"], model_file="onnx/model.onnx"),
    dict(name="rerank-notype-ext", dim=64, outputs=["rank_logits"], token_type_ids=False,
         model_file="onnx/model.onnx", external_data="model.onnx_data"),
    dict(name="rerank-trunc64", dim=64, outputs=["rank_logits"], model_file="onnx/model_int8.onnx",
         tokenizer_config={"model_max_length": 64}),
    # the test family (feature `test-family`): a dense and a sparse output from one pass
    dict(name="twin-64", dim=64, outputs=["dense", "sparse"], model_file="model.onnx",
         tokenizer_config={"model_max_length": 128}),
]

STATIC_VARIANTS = [
    dict(name="static-256", dim=256, rows=VOCAB),
    dict(name="static-512-mapped", dim=512, rows=997, mapping=True),
]


def write_static(variant: dict, seed: int, out: Path) -> None:
    """A model2vec safetensors file: embeddings, and for vocabulary-quantized models a
    token -> row mapping and per-token weights. Written by hand (the format is a length,
    a JSON header and raw little-endian data) to keep the script's dependencies small."""
    rng = np.random.RandomState(seed)
    tensors = {"embeddings": (rng.standard_normal((variant["rows"], variant["dim"])) * 0.3).astype(np.float32)}
    if variant.get("mapping"):
        tensors["mapping"] = rng.randint(0, variant["rows"], size=VOCAB).astype(np.int64)
        tensors["weights"] = rng.uniform(0.1, 2.0, size=VOCAB).astype(np.float32)
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = arr.tobytes()
        dtype = {np.float32: "F32", np.int64: "I64"}[arr.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for b in blobs:
            f.write(b)


def write_idf(d: Path, seed: int) -> None:
    """idf.json of an inference-free SPLADE model: a weight for most vocabulary tokens,
    plus a few tokens the vocabulary lacks (which loading must skip)."""
    vocab = json.loads((d / "tokenizer.json").read_text())["model"]["vocab"]
    rng = np.random.RandomState(seed)
    idf = {tok: round(float(rng.uniform(0.1, 8.0)), 6) for tok in sorted(vocab) if rng.rand() < 0.7}
    idf["zz-not-in-vocab"] = 3.0
    (d / "idf.json").write_text(json.dumps(idf, ensure_ascii=False))


def write_bm25(out: Path, texts: Path) -> dict:
    """A `Qdrant/bm25` folder: config.json and a stopword list per language (tamil has
    none, as in the hub's repo). The hub's lists are not reachable here; these are the
    four most frequent words of each language's test texts, which is all parity needs."""
    d = out / "bm25"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "bm25"}))
    for language, sentences in json.loads(texts.read_text()).items():
        if language == "tamil":
            continue
        counts: dict = {}
        for sent in sentences:
            for w in sent.lower().replace(",", " ").replace(".", " ").split():
                counts[w] = counts.get(w, 0) + 1
        top = sorted(counts, key=lambda w: (-counts[w], w))[:4]
        (d / f"{language}.txt").write_text("\n".join(top) + "\n")
    return {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}


def write_bm42(out: Path, minilm: Path) -> dict:
    """A BM42 folder: the real all-MiniLM-L6-v2 fp32 export (linked, it outputs the last
    layer's attention), its tokenizer, and a stopword list."""
    d = out / "bm42"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "model.onnx").symlink_to((minilm / "model.onnx").resolve())
    copy_tokenizer(minilm, d, {})
    (d / "stopwords.txt").write_text("\n".join(["the", "a", "of", "and", "in", "is", "to", "over"]) + "\n")
    return {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}


CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def clip_config(shortest=224, crop=224, resample=3):
    return {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": shortest},
            "resample": resample, "do_center_crop": True, "crop_size": crop, "do_rescale": True,
            "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD}


# Vision towers: patches by a strided convolution, one attention-free mixing layer, and
# the output layouts of the real exports; each with the preprocessor config it is used with.
VISION_VARIANTS = [
    dict(name="vision-clip-512", input="pixel_values", outputs=["image_embeds"], dim=512, patch=32,
         model_file="model.onnx", config=clip_config()),
    dict(name="vision-resnet-2048", input="input", outputs=["output4d"], dim=2048, patch=32, model_file="model.onnx",
         config={"image_processor_type": "ConvNextFeatureExtractor", "do_resize": True,
                 "size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 3, "do_rescale": True,
                 "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": IMAGENET_MEAN,
                 "image_std": IMAGENET_STD}),
    dict(name="vision-unicom-lanczos-768", input="input", outputs=["image_embeds"], dim=768, patch=16,
         model_file="model.onnx", config=clip_config(resample=1)),
    dict(name="vision-unicom-padcrop-512", input="input", outputs=["image_embeds"], dim=512, patch=32,
         model_file="model.onnx", config=clip_config(shortest=200, crop=224, resample=2)),
    dict(name="vision-jinaclip-768", input="pixel_values", outputs=["image_embeds"], dim=768, patch=32,
         model_file="onnx/vision_model.onnx",
         config={"image_processor_type": "JinaCLIPImageProcessor", "size": 224, "interpolation": "bicubic",
                 "resize_mode": "shortest", "fill_color": 0, "mean": CLIP_MEAN, "std": CLIP_STD}),
    dict(name="vision-nomic-768", input="pixel_values", outputs=["last_hidden_state"], dim=768, patch=32,
         model_file="onnx/model.onnx", also=["onnx/model_quantized.onnx"], config=clip_config()),
    dict(name="vision-siglip-768", input="pixel_values", outputs=["last_hidden_state", "pooler_output"], dim=768,
         patch=16, model_file="onnx/vision_model.onnx",
         config={"image_processor_type": "SiglipImageProcessor", "do_resize": True,
                 "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": True,
                 "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                 "image_std": [0.5, 0.5, 0.5]}),
]


def build_vision(variant: dict, seed: int) -> onnx.ModelProto:
    g = Graph(seed)
    dim, p = variant["dim"], variant["patch"]
    inputs = [helper.make_tensor_value_info(variant["input"], TensorProto.FLOAT, ["batch", 3, "height", "width"])]
    x = g.op("Conv", [variant["input"], g.weight("patch_w", (HIDDEN, 3, p, p), scale=0.05),
                      g.weight("patch_b", (HIDDEN,), scale=0.05)], kernel_shape=[p, p], strides=[p, p])
    x = g.op("Reshape", [x, g.const("to_tokens", np.array([0, HIDDEN, -1], dtype=np.int64))])
    x = g.op("Transpose", [x], perm=[0, 2, 1])
    x = g.layer_norm(x, "patch_ln")
    h = g.op("Relu", [g.op("Add", [g.op("MatMul", [x, g.weight("w1", (HIDDEN, FFN))]), g.weight("b1", (FFN,))])])
    x = g.layer_norm(g.op("Add", [x, g.op("MatMul", [h, g.weight("w2", (FFN, HIDDEN))])]), "ffn_ln")
    hidden = g.op("MatMul", [x, g.weight("proj", (HIDDEN, dim))])
    pooled = g.op("ReduceMean", [hidden], axes=[1], keepdims=0)
    outputs = []
    for out in variant["outputs"]:
        if out == "last_hidden_state":
            g.named("Identity", [hidden], out)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", "tokens", dim]))
        elif out in ("image_embeds", "pooler_output"):
            g.named("Tanh", [g.op("MatMul", [pooled, g.weight(f"w_{out}", (dim, dim), scale=0.1)])], out)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", dim]))
        elif out == "output4d":
            g.named("Reshape", [pooled, g.const("to_4d", np.array([0, dim, 1, 1], dtype=np.int64))], "output")
            outputs.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", dim, 1, 1]))
        else:
            raise ValueError(out)
    graph = helper.make_graph(g.nodes, f"tiny_{variant['name']}", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="embedkit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_multimodal(variant: dict, seed: int) -> onnx.ModelProto:
    """Token embeddings plus a feature of the image(s) (mean colour per channel), mixed,
    normalized and projected: outputs depend on the ids, the attention mask and the
    pixels, as the real graphs' do. `pixel_rank` 4: [batch, 3, H, W] (ColPali); 5:
    [batch, tiles, 3, H, W] (Idefics3), broadcast over a batch of texts."""
    g = Graph(seed)
    dim, vocab, rank = variant["dim"], variant["vocab"], variant["pixel_rank"]
    pix_shape = ["pbatch", 3, "height", "width"] if rank == 4 else ["pbatch", "tiles", 3, "height", "width"]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, pix_shape),
    ]
    x = g.op("Gather", [g.weight("word_embeddings", (vocab, HIDDEN)), "input_ids"])
    axes = [2, 3] if rank == 4 else [1, 3, 4]
    colour = g.op("ReduceMean", ["pixel_values"], axes=axes, keepdims=0)  # [pbatch, 3]
    image = g.op("MatMul", [colour, g.weight("w_image", (3, HIDDEN), scale=1.0)])
    image = g.op("Unsqueeze", [image, g.const("axis1", np.array([1], dtype=np.int64))])
    x = g.op("Add", [x, image])
    m = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                           g.const("axis2", np.array([2], dtype=np.int64))])
    x = g.op("Mul", [x, g.op("Add", [m, g.const("half", np.array(0.5, dtype=np.float32))])])
    x = g.layer_norm(x, "mix_ln")
    g.named("MatMul", [x, g.weight("proj", (HIDDEN, dim))], "last_hidden_state")
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", dim])]
    graph = helper.make_graph(g.nodes, f"tiny_{variant['name']}", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="embedkit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


IDEFICS_TOKENS = ["<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>",
                  "<|begin_of_text|>"] + [f"<row_{r}_col_{c}>" for r in range(1, 5) for c in range(1, 5)]


def write_multimodal(out: Path, tokenizer_dir: Path) -> dict:
    manifest = {}
    # ColPali: a 257153-token vocabulary (its image token is 257152), SigLIP 448 preprocessing
    d = out / "colpali"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    copy_tokenizer(tokenizer_dir, d, {})
    model = build_multimodal(dict(name="colpali", dim=128, vocab=257153, pixel_rank=4), seed=400)
    onnx.save_model(model, str(d / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SiglipImageProcessor", "do_resize": True, "size": {"height": 448, "width": 448},
        "resample": 3, "do_rescale": True, "rescale_factor": 0.00392156862745098, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, indent=1))
    manifest["colpali"] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    # ColModernVBert: Idefics3 tokens registered as special tokens, small tiles
    d = out / "colmodernvbert"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    copy_tokenizer(tokenizer_dir, d, {})
    tokens = json.loads((d / "special_tokens_map.json").read_text())
    tokens["additional_special_tokens"] = IDEFICS_TOKENS
    (d / "special_tokens_map.json").write_text(json.dumps(tokens, indent=1))
    config = json.loads((d / "config.json").read_text())
    config["vision_config"] = {"image_size": 64}
    (d / "config.json").write_text(json.dumps(config, indent=1))
    (d / "processor_config.json").write_text(json.dumps({"image_seq_len": 4}))
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Idefics3ImageProcessor", "do_resize": True, "size": {"longest_edge": 160},
        "max_image_size": {"longest_edge": 64}, "do_image_splitting": True, "resample": 1, "do_rescale": True,
        "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5]}, indent=1))
    model = build_multimodal(dict(name="colmodernvbert", dim=128, vocab=VOCAB + 64, pixel_rank=5), seed=401)
    onnx.save_model(model, str(d / "model_v2.onnx"))
    manifest["colmodernvbert"] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    return manifest


def write_minicoil(out: Path, tokenizer_dir: Path, corpus: Path, seed: int) -> dict:
    """A `Qdrant/minicoil-v1` folder: a seeded 512-d token encoder without token_type_ids
    (as jina-embeddings-v2-small-en), stopwords, and a MiniCOIL vocabulary of frequent
    corpus words (often inflected, so lookups go through the stem mapping) with seeded
    per-word 512x4 matrices. The vocabulary is built with fastembed's own VocabResolver."""
    from fastembed.sparse.utils.vocab_resolver import VocabResolver
    from py_rust_stemmers import SnowballStemmer
    import re

    d = out / "minicoil"
    shutil.rmtree(d, ignore_errors=True)
    (d / "onnx").mkdir(parents=True)
    copy_tokenizer(tokenizer_dir, d, {})
    variant = dict(name="minicoil", dim=512, outputs=["last_hidden_state"], token_type_ids=False)
    onnx.save_model(build(variant, seed), str(d / "onnx/model.onnx"))
    stopwords = ["the", "a", "an", "of", "and", "in", "is", "to", "it", "for", "on", "with"]
    (d / "stopwords.txt").write_text("\n".join(stopwords) + "\n")
    counts: dict = {}
    for line in corpus.read_text().splitlines():
        for w in re.findall(r"[a-z]{3,}", line.lower()):
            counts[w] = counts.get(w, 0) + 1
    rng = np.random.RandomState(seed)
    # the most frequent words, minus a random third so that some frequent words stay unknown
    frequent = [w for w in sorted(counts, key=lambda w: (-counts[w], w)) if w not in stopwords][:1500]
    resolver = VocabResolver(tokenizer=None, stopwords=set(stopwords), stemmer=SnowballStemmer("english"))
    for w in frequent:
        if rng.rand() < 0.67:
            resolver.add_word(w)
    resolver.save_json_vocab(str(d / "minicoil.triplet.model.vocab"))
    weights = (rng.standard_normal((len(resolver.words) + 1, 512, 4)) * 0.05).astype(np.float32)
    np.save(d / "minicoil.triplet.model.npy", weights)
    return {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}


def copy_tokenizer(src: Path, dst: Path, overrides: dict) -> None:
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, dst / name)
    config = json.loads((src / "tokenizer_config.json").read_text())
    config.update(overrides)
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--texts", type=Path, default=Path(__file__).resolve().parents[2] / "tests/data/multilingual.json")
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "tests/data/corpus.txt")
    args = ap.parse_args()
    manifest = {}
    for seed, variant in enumerate(VARIANTS, start=1):
        d = args.out / variant["name"]
        shutil.rmtree(d, ignore_errors=True)
        (d / variant["model_file"]).parent.mkdir(parents=True, exist_ok=True)
        copy_tokenizer(args.tokenizer_dir, d, variant.get("tokenizer_config", {}))
        if variant.get("special_tokens"):
            tokens = json.loads((d / "special_tokens_map.json").read_text())
            tokens.update(variant["special_tokens"])
            (d / "special_tokens_map.json").write_text(json.dumps(tokens, indent=1))
        model = build(variant, seed)
        path = d / variant["model_file"]
        if variant.get("external_data"):
            onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=variant["external_data"], size_threshold=1024)
        else:
            onnx.save_model(model, str(path))
        if variant.get("idf"):
            write_idf(d, seed)
        manifest[variant["name"]] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    for seed, variant in enumerate(STATIC_VARIANTS, start=100):
        d = args.out / variant["name"]
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        shutil.copyfile(args.tokenizer_dir / "tokenizer.json", d / "tokenizer.json")
        write_static(variant, seed, d)
        manifest[variant["name"]] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    manifest["bm25"] = write_bm25(args.out, args.texts)
    manifest["bm42"] = write_bm42(args.out, args.tokenizer_dir)
    manifest["minicoil"] = write_minicoil(args.out, args.tokenizer_dir, args.corpus, seed=200)
    manifest.update(write_multimodal(args.out, args.tokenizer_dir))
    manifest.update(write_m3(args.out, m3_texts(args.corpus, args.texts), seed=400))
    for seed, variant in enumerate(VISION_VARIANTS, start=300):
        d = args.out / variant["name"]
        shutil.rmtree(d, ignore_errors=True)
        (d / variant["model_file"]).parent.mkdir(parents=True, exist_ok=True)
        model = build_vision(variant, seed)
        for f in [variant["model_file"], *variant.get("also", [])]:
            onnx.save_model(model, str(d / f))
        (d / "preprocessor_config.json").write_text(json.dumps(variant["config"], indent=1))
        manifest[variant["name"]] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    print(f"wrote {len(manifest)} models to {args.out}")


if __name__ == "__main__":
    main()
