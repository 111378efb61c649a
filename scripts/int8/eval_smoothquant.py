import sys; sys.argv=[sys.argv[0]]
exec(open("scripts/int8/explore_schemes.py").read().split("names = [n.name")[0])
d = mkdir("smoothq", "target/int8/smooth_q.onnx"); v, t = embed(d); print("quality", quality(v))
