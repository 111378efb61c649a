# Issue 19 (not run by CI): quality (vs fp32 vectors) and speed ratio of target/int8/rewrite.onnx.
# Usage: eval_rewrite.py [MODEL.onnx]. Speed: fp32 and int8 sessions alternate, same batches.
import sys, time, numpy as np, onnxruntime as ort
sys.argv = sys.argv[:1] + sys.argv[1:]
path = sys.argv[1] if len(sys.argv) > 1 else "target/int8/rewrite.onnx"
exec(open("scripts/int8/explore_schemes.py").read().split("names = [n.name")[0].replace("ref, tref = embed(SRC)", "ref, tref = embed(SRC)" if True else ""))
d = mkdir("rewrite", path)
v, _ = embed(d)
mc, mn, keep = quality(v)
from tokenizers import Tokenizer
tok = Tokenizer.from_file(f"{SRC}/tokenizer.json"); tok.enable_truncation(256); tok.enable_padding()
order = sorted(docs, key=len)
batches = [order[i:i + 16] for i in range(0, len(order), 16)]
def sess(p):
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
s32, s8 = sess(f"{SRC}/model.onnx"), sess(path)
t = {0: 0.0, 1: 0.0}
for rep in range(2):
    for b in batches:
        e = tok.encode_batch(b)
        feed = {"input_ids": np.array([x.ids for x in e]), "attention_mask": np.array([x.attention_mask for x in e]),
                "token_type_ids": np.array([x.type_ids for x in e])}
        for i, s in ((0, s32), (1, s8)):
            t0 = time.perf_counter(); s.run(None, feed); t[i] += time.perf_counter() - t0
print(f"| {mc:.4f} | {mn:.4f} | {keep*100:.1f}% | {t[0]/t[1]:.2f}x |")
