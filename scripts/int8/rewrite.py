# Issue 19 (not run by CI): prototype of the rewrite embedkit does in Rust, to choose the scheme.
# Every MatMul with a constant weight becomes: [Mul by 1/s (smoothing; 0 on outlier channels)]
# -> DynamicQuantizeLinear -> MatMulInteger (per-column int8 weights) -> Cast -> Mul(scales),
# plus, for the k outlier input channels, Gather -> fp32 MatMul on those weight rows -> Add
# (LLM.int8()'s decomposition). Usage: [SKIP=a,b] [DECOMP=a,b] rewrite.py ALPHA K [excluded-substring ...]
# Calibrates on corpus lines 600-800; evaluate with eval_rewrite.py.
import os, sys, numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper, helper, TensorProto
from tokenizers import Tokenizer

SRC = "../shared/models/all-MiniLM-L6-v2-fp32"
alpha = float(sys.argv[1])
k_out = int(sys.argv[2])
excluded = sys.argv[3:]
DECOMP = os.environ.get("DECOMP", "MatMul").split(",")
out_path = "target/int8/rewrite.onnx"

m = onnx.load(f"{SRC}/model.onnx")
g = m.graph
inits = {i.name: i for i in g.initializer}
consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"}


def const(name):
    return numpy_helper.to_array(inits[name]) if name in inits else consts.get(name)


mm = [n for n in g.node if n.op_type == "MatMul" and const(n.input[1]) is not None
      and const(n.input[1]).ndim == 2 and not any(e in n.name for e in excluded)]
cal = onnx.ModelProto()
cal.CopyFrom(m)
for x in {n.input[0] for n in mm}:
    cal.graph.output.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, None))
sess = ort.InferenceSession(cal.SerializeToString(), providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(f"{SRC}/tokenizer.json")
tok.enable_truncation(256)
docs = [l.strip() for l in open("./tests/data/corpus.txt") if l.strip()][600:800]
names = [o.name for o in sess.get_outputs()]
amax = {}
for d in docs:
    e = tok.encode(d)
    feed = {"input_ids": np.array([e.ids]), "attention_mask": np.array([e.attention_mask]),
            "token_type_ids": np.array([e.type_ids])}
    for nm, o in zip(names, sess.run(None, feed)):
        if nm not in {n.input[0] for n in mm}:
            continue
        a = np.abs(o.reshape(-1, o.shape[-1])).max(0)
        amax[nm] = np.maximum(amax.get(nm, 0), a)

by_input = {}
for n in mm:
    by_input.setdefault(n.input[0], []).append(n)
new = {}  # node name -> replacement nodes
added = []
for x, nodes in by_input.items():
    W = [const(n.input[1]) for n in nodes]
    a = amax[x]
    # SKIP: comma-separated name parts of products that get no outlier path.
    skip = [x for x in os.environ.get("SKIP", "").split(",") if x]
    k = k_out if any(d in nodes[0].name for d in DECOMP) and not any(x in nodes[0].name for x in skip) else 0
    if k < 0:  # threshold: channels above |k| x the median channel maximum
        outl = np.nonzero(a > -k * np.median(a))[0]
        k = len(outl)
    else:
        outl = np.argsort(-a)[:k] if k else np.array([], dtype=np.int64)
    if k and os.environ.get("STATS"):
        print(nodes[0].name, k)
    if os.environ.get("STATS"):
        srt = np.sort(a)[::-1]
        print(f"{nodes[0].name[:48]:48} top {srt[:4].round(1)} median {np.median(a):.2f}")
    if alpha > 0:
        wmax = np.max([np.abs(w).max(1) for w in W], 0)
        s = np.power(np.maximum(a, 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
        s = np.maximum(s, 1e-5).astype(np.float32)
    else:
        s = np.ones_like(a, dtype=np.float32)
    inv = (1.0 / s).astype(np.float32)
    inv[outl] = 0.0
    pre = []
    xs = x
    if alpha > 0 or k:
        added.append(numpy_helper.from_array(inv, x + "_inv_s"))
        xs = x + "_s"
        pre.append(helper.make_node("Mul", [x, x + "_inv_s"], [xs]))
    pre.append(helper.make_node("DynamicQuantizeLinear", [xs], [x + "_q", x + "_qs", x + "_qz"]))
    if k:
        added.append(numpy_helper.from_array(outl.astype(np.int64), x + "_outl"))
        pre.append(helper.make_node("Gather", [x, x + "_outl"], [x + "_o"], axis=-1))
    for i, (n, w) in enumerate(zip(nodes, W)):
        ws = (w * s[:, None]).astype(np.float32)
        ws[outl, :] = 0
        sc = np.maximum(np.abs(ws).max(0), 1e-12) / 127.0
        q = np.clip(np.round(ws / sc), -127, 127).astype(np.int8)
        p = n.name
        added += [numpy_helper.from_array(q, p + "_wq"), numpy_helper.from_array(sc.astype(np.float32), p + "_ws"),
                  numpy_helper.from_array(np.zeros(q.shape[1], np.int8), p + "_wz")]
        y = n.output[0]
        body = [helper.make_node("Mul", [x + "_qs", p + "_ws"], [p + "_sc"]),
                helper.make_node("MatMulInteger", [x + "_q", p + "_wq", x + "_qz", p + "_wz"], [p + "_i32"]),
                helper.make_node("Cast", [p + "_i32"], [p + "_f"], to=TensorProto.FLOAT)]
        if k:
            added.append(numpy_helper.from_array(w[outl, :].astype(np.float32), p + "_wo"))
            body += [helper.make_node("Mul", [p + "_f", p + "_sc"], [p + "_y"]),
                     helper.make_node("MatMul", [x + "_o", p + "_wo"], [p + "_yo"]),
                     helper.make_node("Add", [p + "_y", p + "_yo"], [y])]
        else:
            body.append(helper.make_node("Mul", [p + "_f", p + "_sc"], [y]))
        new[n.name] = (pre if i == 0 else []) + body
order = []
for n in g.node:
    order += new.get(n.name, [n]) if n.name in new else [n]
del g.node[:]
g.node.extend(order)
used = {i for n in g.node for i in n.input}
keep = [i for i in g.initializer if i.name in used]
del g.initializer[:]
g.initializer.extend(keep + added)
onnx.checker.check_model(m)
onnx.save(m, out_path)
print("rewrote", len(mm), "matmuls; alpha", alpha, "outliers", k_out, "excluded", excluded)
