# Issue 19 (not run by CI): quality-only simulation of int8 schemes. Writes a float graph in
# which every product with a constant weight (>= 64 columns) sees its activation
# quantized-and-dequantized and its weight rounded to per-column int8, so any scheme can be
# scored through the embedkit CLI at exact precision (eval_cli.py) without writing kernels.
# Usage: fakequant.py SRC_DIR OUT_DIR MODE K
#   MODE: none (weights only), tensor (per-tensor u8, as DynamicQuantizeLinear), row (per-token
#         symmetric); K: calibrated largest input channels left exact (the outlier path).
#   GPTQ=1: weights rounded by GPTQ (error fed forward through the calibration Hessian)
#   instead of to nearest; EXCL=a,b: products whose node or weight name contains one stay fp32.
# Calibration: tests/data/corpus.txt lines 600-700.
import os, sys, shutil, numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper, helper, TensorProto
from tokenizers import Tokenizer

src, out, mode, K = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
excl = [e for e in os.environ.get("EXCL", "").split(",") if e]
m = onnx.load(f"{src}/model.onnx")
g = m.graph
inits = {i.name: i for i in g.initializer}


def const(name):
    return numpy_helper.to_array(inits[name]) if name in inits else None


mm = [n for n in g.node if n.op_type == "MatMul" and const(n.input[1]) is not None
      and const(n.input[1]).ndim == 2 and const(n.input[1]).shape[1] >= 64
      and not any(e in n.name + n.input[1] for e in excl)]
xs = sorted({n.input[0] for n in mm})

# Calibration: channel maxima and X^T X of every product's input.
cal = onnx.ModelProto()
cal.CopyFrom(m)
for x in xs:
    cal.graph.output.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, None))
sess = ort.InferenceSession(cal.SerializeToString(), providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(f"{src}/tokenizer.json")
tok.enable_truncation(256)
names = [o.name for o in sess.get_outputs()]
feeds = [i.name for i in sess.get_inputs()]
amax, hess = {}, {}
for t in open("tests/data/corpus.txt").read().splitlines()[600:700]:
    ids = np.array([tok.encode(t).ids], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in feeds:
        feed["token_type_ids"] = np.zeros_like(ids)
    for nm, o in zip(names, sess.run(None, feed)):
        if nm in xs:
            o2 = o.reshape(-1, o.shape[-1]).astype(np.float64)
            amax[nm] = np.maximum(amax.get(nm, 0), np.abs(o2).max(0))
            hess[nm] = hess.get(nm, 0) + o2.T @ o2


def gptq(W, H, keep, s):
    """GPTQ over the rows in `keep` (input channels), per-column scales `s`."""
    idx = np.where(keep)[0]
    Wk = W[idx].astype(np.float64)
    Hk = H[np.ix_(idx, idx)].copy()
    Hk[np.diag_indices_from(Hk)] += 0.01 * np.mean(np.diag(Hk)) + 1e-9
    U = np.linalg.cholesky(np.linalg.inv(Hk)).T
    Q = np.zeros_like(Wk)
    for k in range(len(idx)):
        Q[k] = np.clip(np.round(Wk[k] / s), -127, 127) * s
        Wk[k + 1:] -= np.outer(U[k, k + 1:], (Wk[k] - Q[k]) / U[k, k])
    W = W.astype(np.float64)
    W[idx] = Q
    return W.astype(np.float32)


added, new_inits = {}, []
for x in xs:
    p = "fq_" + x.replace("/", "_").replace(":", "_")
    mask = np.ones(amax[x].shape[0], np.float32)
    if K > 0:
        mask[np.argsort(-amax[x])[:K]] = 0
    new_inits += [numpy_helper.from_array(mask, p + "_mask"), numpy_helper.from_array(1 - mask, p + "_inv")]
    nodes = [helper.make_node("Mul", [x, p + "_mask"], [p + "_xm"])]
    if mode == "none":
        nodes.append(helper.make_node("Identity", [p + "_xm"], [p + "_dq"]))
    elif mode == "tensor":
        nodes += [helper.make_node("DynamicQuantizeLinear", [p + "_xm"], [p + "_q", p + "_s", p + "_z"]),
                  helper.make_node("DequantizeLinear", [p + "_q", p + "_s", p + "_z"], [p + "_dq"])]
    elif mode == "row":
        new_inits += [numpy_helper.from_array(np.array(127, np.float32), p + "_127"),
                      numpy_helper.from_array(np.array(1e-12, np.float32), p + "_eps")]
        nodes += [helper.make_node("Abs", [p + "_xm"], [p + "_abs"]),
                  helper.make_node("ReduceMax", [p + "_abs"], [p + "_rm"], axes=[-1], keepdims=1),
                  helper.make_node("Max", [p + "_rm", p + "_eps"], [p + "_rm2"]),
                  helper.make_node("Div", [p + "_rm2", p + "_127"], [p + "_s"]),
                  helper.make_node("Div", [p + "_xm", p + "_s"], [p + "_d"]),
                  helper.make_node("Round", [p + "_d"], [p + "_r"]),
                  helper.make_node("Mul", [p + "_r", p + "_s"], [p + "_dq"])]
    else:
        sys.exit(f"unknown mode {mode}")
    nodes += [helper.make_node("Mul", [x, p + "_inv"], [p + "_xo"]),
              helper.make_node("Add", [p + "_dq", p + "_xo"], [p + "_out"])]
    added[x] = (nodes, p + "_out")

for n in mm:
    W = const(n.input[1])
    s = np.abs(W).max(0) / 127
    s[s == 0] = 1
    keep = np.ones(W.shape[0], bool)
    if K > 0:
        keep[np.argsort(-amax[n.input[0]])[:K]] = False
    if os.environ.get("GPTQ"):
        Wq = gptq(W, hess[n.input[0]], keep, s)
    else:
        Wq = np.where(keep[:, None], np.round(W / s) * s, W).astype(np.float32)
    inits[n.input[1]].CopyFrom(numpy_helper.from_array(Wq, n.input[1]))
    n.input[0] = added[n.input[0]][1]

# Each input's simulation goes right before its first reader.
order = list(g.node)
del g.node[:]
placed = set()
for n in order:
    for x, (nodes, o) in added.items():
        if o in n.input and x not in placed:
            g.node.extend(nodes)
            placed.add(x)
    g.node.append(n)
g.initializer.extend(new_inits)
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.int8-*", "model.onnx"))
onnx.save(m, f"{out}/model.onnx")
print(f"fakequant: {len(mm)} products, activations {mode}, {K} outlier channels -> {out}")
