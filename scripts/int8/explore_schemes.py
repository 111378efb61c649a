# Issue 19 groundwork (not run by CI): quality of onnxruntime.quantization dynamic int8
# schemes on MiniLM fp32 against the fp32 vectors, with the oracle venv. Speeds printed
# here were measured under load and are not figures.
# Exploration for issue 19: quality of int8 dynamic-quantization schemes on MiniLM fp32.
import os, sys, shutil, time, json
import numpy as np, onnx
from onnxruntime.quantization import quantize_dynamic, QuantType
from fastembed import TextEmbedding
SRC = "../shared/models/all-MiniLM-L6-v2-fp32"
docs = [l.strip() for l in open("./tests/data/corpus.txt") if l.strip()][:600]
def embed(d):
    m = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=d, threads=1)
    t=time.time(); v = np.array(list(m.embed(docs, batch_size=32))); return v, time.time()-t
def mkdir(name, model_path):
    d = os.path.abspath(f"target/int8/{name}"); os.makedirs(d, exist_ok=True)
    src = os.path.abspath(SRC)
    for f in os.listdir(SRC):
        if f != "model.onnx" and not os.path.exists(f"{d}/{f}"): os.symlink(f"{src}/{f}", f"{d}/{f}")
    if os.path.abspath(model_path) != os.path.abspath(f"{d}/model.onnx"):
        shutil.copy(model_path, f"{d}/model.onnx")
    return d
os.makedirs("target/int8", exist_ok=True)
ref, tref = embed(SRC)
def quality(v):
    cos = (v*ref).sum(1)/np.linalg.norm(v,axis=1)/np.linalg.norm(ref,axis=1)
    def knn(x):
        x = x/np.linalg.norm(x,axis=1,keepdims=True); s = x@x.T; np.fill_diagonal(s,-9); return np.argsort(-s,1)[:,:10]
    a,b = knn(ref), knn(v)
    keep = np.mean([len(set(a[i])&set(b[i]))/10 for i in range(len(v))])
    return cos.mean(), cos.min(), keep
names = [n.name for n in onnx.load(f"{SRC}/model.onnx").graph.node if n.op_type=="MatMul"]
down = [n for n in names if n.endswith("/output/dense/MatMul") and "attention" not in n]
attn_out = [n for n in names if "attention/output/dense" in n]
schemes = {
 "all MatMul, per-channel s8": dict(per_channel=True, weight_type=QuantType.QInt8),
 "all MatMul, per-tensor s8": dict(per_channel=False, weight_type=QuantType.QInt8),
 "all MatMul, per-channel u8": dict(per_channel=True, weight_type=QuantType.QUInt8),
 "FFN down fp32, per-channel s8": dict(per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=down),
 "FFN down + attn out fp32": dict(per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=down+attn_out),
 "FFN down layers 3-5 fp32": dict(per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=[n for n in down if any(f"layer.{k}/" in n for k in (3,4,5))]),
 "last layer FFN down fp32": dict(per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=[n for n in down if "layer.5/" in n]),
}
print(f"fp32: {len(docs)} docs in {tref:.1f}s")
for name, kw in schemes.items():
    out = f"target/int8/{abs(hash(name))}.onnx"
    quantize_dynamic(f"{SRC}/model.onnx", out, op_types_to_quantize=["MatMul"], **kw)
    d = mkdir(str(abs(hash(name))), out)
    v, t = embed(d)
    mc, mn, keep = quality(v)
    print(f"| {name} | {mc:.4f} | {mn:.4f} | {keep*100:.1f}% | {tref/t:.2f}x |", flush=True)
