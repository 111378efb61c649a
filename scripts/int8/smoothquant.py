# Issue 19 groundwork (not run by CI). Usage: smoothquant.py ALPHA [down|all], then
# eval_smoothquant.py. Calibrates on corpus lines 600-800, evaluates on lines 0-600.
# SmoothQuant on MiniLM fp32: divide each quantized MatMul's input by a per-channel scale
# s (an inserted Mul; BERT's LayerNorm outputs also feed the residuals, so s cannot be folded
# into gamma/beta) and multiply the weight rows by s, then per-channel int8 dynamic quantization.
import sys, numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper
from tokenizers import Tokenizer
SRC = "../shared/models/all-MiniLM-L6-v2-fp32"
alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
excl_down = len(sys.argv) > 2 and sys.argv[2] == "down"
m = onnx.load(f"{SRC}/model.onnx")
g = m.graph
inits = {i.name: i for i in g.initializer}
producer = {o: n for n in g.node for o in n.output}
consts = {}
for n in g.node:
    if n.op_type == "Constant":
        consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
def const(name):
    if name in inits: return numpy_helper.to_array(inits[name])
    return consts.get(name)
mm = [n for n in g.node if n.op_type == "MatMul" and const(n.input[1]) is not None]
# calibration: expose every quantizable MatMul's input
cal = onnx.ModelProto(); cal.CopyFrom(m)
have = {o.name for o in cal.graph.output}
for n in mm:
    if n.input[0] not in have:
        cal.graph.output.append(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None)); have.add(n.input[0])
sess = ort.InferenceSession(cal.SerializeToString(), providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(f"{SRC}/tokenizer.json"); tok.enable_truncation(256)
docs = [l.strip() for l in open("./tests/data/corpus.txt") if l.strip()][600:800]
amax = {}
names = [o.name for o in sess.get_outputs()]
for d in docs:
    e = tok.encode(d)
    feed = {"input_ids": np.array([e.ids]), "attention_mask": np.array([e.attention_mask]), "token_type_ids": np.array([e.type_ids])}
    feed = {k: v for k, v in feed.items() if k in [i.name for i in sess.get_inputs()]}
    outs = sess.run(None, feed)
    for nm, o in zip(names, outs):
        if nm not in {n.input[0] for n in mm}: continue
        a = np.abs(o.reshape(-1, o.shape[-1])).max(0)
        amax[nm] = np.maximum(amax.get(nm, 0), a)
# smooth: group MatMuls by shared input (Q,K,V share the LN output)
by_input = {}
for n in mm: by_input.setdefault(n.input[0], []).append(n)
smoothed = 0
new_nodes = []
for x, nodes in by_input.items():
    W = [const(n.input[1]) for n in nodes]
    wmax = np.max([np.abs(w).max(1) for w in W], 0)
    s = np.power(np.maximum(amax[x], 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
    s = np.maximum(s, 1e-5).astype(np.float32)
    inv = numpy_helper.from_array((1.0 / s).astype(np.float32), x + "_smooth_inv")
    g.initializer.append(inv)
    xs = x + "_smoothed"
    new_nodes.append((nodes[0], onnx.helper.make_node("Mul", [x, inv.name], [xs], name=x + "_smooth")))
    for n, w in zip(nodes, W):
        nm = n.input[1]; val = (w * s[:, None]).astype(np.float32)
        if nm in inits: inits[nm].CopyFrom(numpy_helper.from_array(val, nm))
        else: producer[nm].attribute[0].t.CopyFrom(numpy_helper.from_array(val))
        n.input[0] = xs
    smoothed += len(nodes)
# insert each Mul just before its first consumer (topological order)
order = list(g.node)
for first, mul in new_nodes:
    order.insert(order.index(first), mul)
del g.node[:]
g.node.extend(order)
onnx.save(m, "target/int8/smooth.onnx")
from onnxruntime.quantization import quantize_dynamic, QuantType
down = [n.name for n in mm if n.name.endswith("/output/dense/MatMul") and "attention" not in n.name]
quantize_dynamic("target/int8/smooth.onnx", "target/int8/smooth_q.onnx", op_types_to_quantize=["MatMul"], per_channel=True,
                 weight_type=QuantType.QInt8, nodes_to_exclude=down if excl_down else [])
print("smoothed", smoothed, "matmuls")
