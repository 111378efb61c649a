"""Seeded small BGE-M3-shaped models, in the two layouts users download, without torch.

- `bge-m3`: the `BAAI/bge-m3` layout. A 2-layer XLM-RoBERTa encoder as `onnx/model.onnx`
  with its weights in `onnx/model.onnx_data` (external data), the same weights as
  `model.safetensors` with an XLM-R `config.json` (what FlagEmbedding's `BGEM3FlagModel`
  loads, so the oracle runs the very same network in torch), and the two heads as torch
  checkpoints: `colbert_linear.pt` and `sparse_linear.pt`. The encoder is BGE-M3's width
  (1024), so the registry's own descriptions load it.
- `bge-m3-int8`: the `gpahal/bge-m3-onnx-int8` layout. One graph, `model_quantized.onnx`,
  the same encoder with the heads inside, outputs `dense_vecs`, `sparse_vecs`,
  `colbert_vecs` (weights fp32: the layout is what is tested, not the quantization).

The tokenizer is an XLM-R-style SentencePiece Unigram (`<s>`=0, `<pad>`=1, `</s>`=2,
`<unk>`=3, `<mask>` last) whose pieces are the frequent words and characters of the test
texts, with scores from their counts: no training, so the same texts give the same file.
Characters seen once are left out, so rare scripts become `<unk>`.
"""

import hashlib
import json
import math
import shutil
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# BGE-M3's width (so the registry's descriptions fit the seeded models), with two layers,
# a narrow feed-forward block and a 1024-token context to keep the files small (~45 MB).
HIDDEN = 1024
HEADS = 16
FFN = 64
LAYERS = 2
CONTEXT = 1024
MAX_POS = CONTEXT + 2  # XLM-R's positions start after padding_idx
PAD = 1
EPS = 1e-5


def build_tokenizer(texts: list) -> "Tokenizer":
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    words, chars = Counter(), Counter()
    for t in texts:
        for w in t.split():
            words["\u2581" + w] += 1
            chars.update(w)
    pieces = {w: c for w, c in words.items() if c >= 3 and len(w) > 2}
    pieces.update({c: n for c, n in chars.items() if n >= 2})
    pieces["\u2581"] = sum(words.values())
    total = sum(pieces.values())
    ranked = sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0]))[:6000]
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = [(s, 0.0) for s in specials]
    vocab += [(p, math.log(c / total)) for p, c in ranked]
    vocab.append(("<mask>", 0.0))
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials + ["<mask>"]])
    return tok


def seeded_weights(vocab: int, seed: int) -> dict:
    """XLM-R weights under the names `transformers` gives them (Linear weights [out, in])."""
    rng = np.random.RandomState(seed)

    def w(*shape, scale=None):
        # Linear weights scaled by their fan-in, so activations keep unit scale at 1024 wide.
        scale = scale if scale is not None else 1.1 / math.sqrt(shape[-1])
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ln(prefix):
        return {f"{prefix}.weight": (1.0 + rng.standard_normal(HIDDEN) * 0.1).astype(np.float32),
                f"{prefix}.bias": w(HIDDEN, scale=0.1)}

    p = {"embeddings.word_embeddings.weight": w(vocab, HIDDEN, scale=0.2),
         "embeddings.position_embeddings.weight": w(MAX_POS, HIDDEN, scale=0.2),
         "embeddings.token_type_embeddings.weight": w(1, HIDDEN, scale=0.2)}
    p.update(ln("embeddings.LayerNorm"))
    for i in range(LAYERS):
        pre = f"encoder.layer.{i}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            p[f"{pre}.{name}.weight"] = w(HIDDEN, HIDDEN)
            p[f"{pre}.{name}.bias"] = w(HIDDEN, scale=0.1)
        p.update(ln(f"{pre}.attention.output.LayerNorm"))
        p[f"{pre}.intermediate.dense.weight"] = w(FFN, HIDDEN)
        p[f"{pre}.intermediate.dense.bias"] = w(FFN, scale=0.1)
        p[f"{pre}.output.dense.weight"] = w(HIDDEN, FFN)
        p[f"{pre}.output.dense.bias"] = w(HIDDEN, scale=0.1)
        p.update(ln(f"{pre}.output.LayerNorm"))
    p["pooler.dense.weight"] = w(HIDDEN, HIDDEN)
    p["pooler.dense.bias"] = w(HIDDEN, scale=0.1)
    heads = {"colbert": {"weight": w(HIDDEN, HIDDEN), "bias": w(HIDDEN, scale=0.1)},
             "sparse": {"weight": w(1, HIDDEN), "bias": np.array([-0.1], dtype=np.float32)}}
    return p, heads


class Net:
    """ONNX nodes of the XLM-R forward pass, weights as initializers of their HF names."""

    def __init__(self, params: dict):
        self.params = params
        self.nodes, self.inits, self.used, self.n = [], [], set(), 0

    def p(self, name):
        if name not in self.used:
            self.used.add(name)
            self.inits.append(numpy_helper.from_array(self.params[name], name))
        return name

    def const(self, arr):
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, out=None, **attrs):
        self.n += 1
        out = out or f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x, prefix, weight=None, bias=None):
        wt = self.const(np.ascontiguousarray((weight if weight is not None else self.params[f"{prefix}.weight"]).T))
        b = self.const(bias) if bias is not None else self.p(f"{prefix}.bias")
        return self.op("Add", [self.op("MatMul", [x, wt]), b])

    def ln(self, x, prefix):
        return self.op("LayerNormalization", [x, self.p(f"{prefix}.weight"), self.p(f"{prefix}.bias")],
                       axis=-1, epsilon=EPS)

    def heads_split(self, x):
        # [b, s, H] -> [b, heads, s, dh]
        r = self.op("Reshape", [x, self.const(np.array([0, 0, HEADS, HIDDEN // HEADS], dtype=np.int64))])
        return self.op("Transpose", [r], perm=[0, 2, 1, 3])

    def encoder(self):
        ids = "input_ids"
        not_pad = self.op("Cast", [self.op("Not", [self.op("Equal", [ids, self.const(np.array(PAD, dtype=np.int64))])])],
                          to=TensorProto.INT64)
        cum = self.op("CumSum", [not_pad, self.const(np.array(1, dtype=np.int64))])
        pos = self.op("Add", [self.op("Mul", [cum, not_pad]), self.const(np.array(PAD, dtype=np.int64))])
        x = self.op("Gather", [self.p("embeddings.word_embeddings.weight"), ids])
        x = self.op("Add", [x, self.op("Gather", [self.p("embeddings.position_embeddings.weight"), pos])])
        types = self.op("Gather", [self.p("embeddings.token_type_embeddings.weight"),
                                   self.const(np.array(0, dtype=np.int64))])
        x = self.ln(self.op("Add", [x, types]), "embeddings.LayerNorm")
        mask = self.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        # [b, 1, 1, s]: 0 where attended, float32's lowest where padded (as transformers)
        bias = self.op("Mul", [self.op("Sub", [self.const(np.float32(1.0)), mask]),
                               self.const(np.float32(np.finfo(np.float32).min))])
        bias = self.op("Unsqueeze", [bias, self.const(np.array([1, 2], dtype=np.int64))])
        scale = self.const(np.float32(1.0 / math.sqrt(HIDDEN // HEADS)))
        for i in range(LAYERS):
            pre = f"encoder.layer.{i}"
            q = self.heads_split(self.linear(x, f"{pre}.attention.self.query"))
            k = self.heads_split(self.linear(x, f"{pre}.attention.self.key"))
            v = self.heads_split(self.linear(x, f"{pre}.attention.self.value"))
            scores = self.op("Mul", [self.op("MatMul", [q, self.op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
            probs = self.op("Softmax", [self.op("Add", [scores, bias])], axis=-1)
            ctx = self.op("Transpose", [self.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
            ctx = self.op("Reshape", [ctx, self.const(np.array([0, 0, HIDDEN], dtype=np.int64))])
            att = self.linear(ctx, f"{pre}.attention.output.dense")
            x = self.ln(self.op("Add", [att, x]), f"{pre}.attention.output.LayerNorm")
            h = self.linear(x, f"{pre}.intermediate.dense")
            # exact (erf) GELU, as XLM-R's `gelu`
            gelu = self.op("Mul", [self.op("Mul", [h, self.const(np.float32(0.5))]),
                                   self.op("Add", [self.const(np.float32(1.0)),
                                                   self.op("Erf", [self.op("Div", [h, self.const(np.float32(math.sqrt(2.0)))])])])])
            out = self.linear(gelu, f"{pre}.output.dense")
            x = self.ln(self.op("Add", [out, x]), f"{pre}.output.LayerNorm")
        return x

    def l2(self, x, out):
        norm = self.op("ReduceL2", [x], axes=[-1], keepdims=1)
        return self.op("Div", [x, self.op("Max", [norm, self.const(np.float32(1e-12))])], out=out)

    def model(self, outputs) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
                  for n in ("input_ids", "attention_mask")]
        graph = helper.make_graph(self.nodes, "xlmr", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def hidden_graph(params: dict) -> onnx.ModelProto:
    net = Net(params)
    net.op("Identity", [net.encoder()], out="last_hidden_state")
    out = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN])]
    return net.model(out)


def combined_graph(params: dict, heads: dict) -> onnx.ModelProto:
    """The encoder with both heads inside, as gpahal's export: dense the normalized `<s>`
    vector, sparse `relu(sparse_linear(h))`, ColBERT `colbert_linear(h[:, 1:])` zeroed at
    padding and normalized."""
    net = Net(params)
    h = net.encoder()
    first = net.op("Gather", [h, net.const(np.array(0, dtype=np.int64))], axis=1)
    net.l2(first, "dense_vecs")
    sparse = net.linear(h, None, heads["sparse"]["weight"], heads["sparse"]["bias"])
    net.op("Relu", [sparse], out="sparse_vecs")
    big = net.const(np.array([np.iinfo(np.int64).max], dtype=np.int64))
    one, axis = net.const(np.array([1], dtype=np.int64)), net.const(np.array([1], dtype=np.int64))
    tail = net.op("Slice", [h, one, big, axis])
    colbert = net.linear(tail, None, heads["colbert"]["weight"], heads["colbert"]["bias"])
    mask = net.op("Unsqueeze", [net.op("Cast", [net.op("Slice", ["attention_mask", one, big, axis])],
                                       to=TensorProto.FLOAT), net.const(np.array([2], dtype=np.int64))])
    net.l2(net.op("Mul", [colbert, mask]), "colbert_vecs")
    out = [helper.make_tensor_value_info("dense_vecs", TensorProto.FLOAT, ["batch", HIDDEN]),
           helper.make_tensor_value_info("sparse_vecs", TensorProto.FLOAT, ["batch", "seq", 1]),
           helper.make_tensor_value_info("colbert_vecs", TensorProto.FLOAT, ["batch", "seq_1", HIDDEN])]
    return net.model(out)


def torch_checkpoint(path: Path, tensors: dict) -> None:
    """Writes `tensors` (float32) as `torch.save(state_dict)` does: a zip archive (stored,
    fixed timestamps) holding the pickle of an OrderedDict of tensors whose storages are
    persistent ids, and one raw little-endian file per storage."""

    def text(s: str) -> bytes:
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def integer(i: int) -> bytes:
        return b"J" + struct.pack("<i", i)

    def tup(items) -> bytes:
        return b"(" + b"".join(items) + b"t"

    ordered = b"ccollections\nOrderedDict\n)R"
    pkl = b"\x80\x02" + ordered + b"("
    for key, (name, arr) in enumerate(tensors.items()):
        stride, acc = [], 1
        for n in reversed(arr.shape):
            stride.insert(0, acc)
            acc *= n
        storage = tup([text("storage"), b"ctorch\nFloatStorage\n", text(str(key)), text("cpu"), integer(arr.size)])
        args = tup([storage + b"Q", integer(0), tup(integer(n) for n in arr.shape),
                    tup(integer(s) for s in stride), b"\x89", ordered])
        pkl += text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"
    pkl += b"u."
    stem = path.stem
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        def put(name, data):
            z.writestr(zipfile.ZipInfo(f"{stem}/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)
        put("data.pkl", pkl)
        put("byteorder", b"little")
        for key, arr in enumerate(tensors.values()):
            put(f"data/{key}", np.ascontiguousarray(arr, dtype="<f4").tobytes())
        put("version", b"3\n")


def safetensors_file(path: Path, tensors: dict) -> None:
    """The safetensors layout: an 8-byte header length, a JSON header of dtype, shape
    and offsets, then the raw little-endian data (what `transformers` loads)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def tokenizer_files(d: Path, tok, vocab: int) -> None:
    tok.save(str(d / "tokenizer.json"))
    specials = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": "<mask>",
                "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"}
    (d / "special_tokens_map.json").write_text(json.dumps(specials, indent=1))
    config = dict(specials, model_max_length=CONTEXT, tokenizer_class="XLMRobertaTokenizer", clean_up_tokenization_spaces=True)
    (d / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    xlmr = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "vocab_size": vocab,
            "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": FFN, "hidden_act": "gelu", "max_position_embeddings": MAX_POS,
            "type_vocab_size": 1, "layer_norm_eps": EPS, "pad_token_id": PAD, "bos_token_id": 0,
            "eos_token_id": 2, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "position_embedding_type": "absolute", "torch_dtype": "float32"}
    (d / "config.json").write_text(json.dumps(xlmr, indent=1))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_m3(out: Path, texts: list, seed: int) -> dict:
    """Both layouts under `out`; returns {folder: {file: sha256}} for the manifest."""
    tok = build_tokenizer(texts)
    vocab = tok.get_vocab_size()
    params, heads = seeded_weights(vocab, seed)
    manifest = {}
    d = out / "bge-m3"
    shutil.rmtree(d, ignore_errors=True)
    (d / "onnx").mkdir(parents=True)
    tokenizer_files(d, tok, vocab)
    # External data as the hub's export has it: the weights in model.onnx_data, one
    # constant in a file of its own.
    model = hidden_graph(params)
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=1024)
    for t in model.graph.initializer:
        if t.name == "embeddings.token_type_embeddings.weight":
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = "Constant_7_attr__value"
    onnx.save_model(model, str(d / "onnx/model.onnx"))
    safetensors_file(d / "model.safetensors", params)
    torch_checkpoint(d / "colbert_linear.pt", heads["colbert"])
    torch_checkpoint(d / "sparse_linear.pt", heads["sparse"])
    manifest["bge-m3"] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    d = out / "bge-m3-int8"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    tokenizer_files(d, tok, vocab)
    onnx.save_model(combined_graph(params, heads), str(d / "model_quantized.onnx"))
    manifest["bge-m3-int8"] = {str(p.relative_to(d)): sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
    return manifest


def m3_texts(corpus: Path, multilingual: Path) -> list:
    """The texts the tokenizer's pieces come from."""
    texts = [l for l in corpus.read_text().splitlines() if l.strip()]
    for group in json.loads(multilingual.read_text()).values():
        texts.extend(group)
    return texts
