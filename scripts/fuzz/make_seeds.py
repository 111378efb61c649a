"""Writes the fuzz targets' seed inputs into fuzz/seeds/<target>/ (committed).

Seeds start the fuzzers from valid inputs so they reach the deep paths quickly: tar
archives with files, folders and links (some escaping), the test images, and a valid
request for each server route. Each seed follows its target's input layout (see the
target's source).
"""
import argparse
import io
import json
import pathlib
import tarfile


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for kind, name, arg in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(arg)
                tar.addfile(info, io.BytesIO(arg))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = arg
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = arg
                tar.addfile(info)
    return buf.getvalue()


ARCHIVES = {
    "model": [("dir", "m", None), ("file", "m/model.onnx", b"onnx"),
              ("file", "m/config.json", b"{}")],
    "symlink-inside": [("file", "m/a.txt", b"a"), ("symlink", "m/b.txt", "a.txt")],
    "symlink-outside": [("symlink", "m/x", "../../etc/passwd")],
    "hardlink": [("file", "m/a", b"data"), ("hardlink", "m/b", "m/a")],
    "dotdot": [("file", "m/../../evil", b"x")],
    "absolute": [("file", "/tmp/evil", b"x")],
    # A link to the current folder, then a link through it that climbs out.
    "link-chain": [("symlink", "x", "."), ("symlink", "x/y", ".."), ("file", "x/y/evil", b"x")],
    "link-chain-only": [("symlink", "x", "."), ("symlink", "x/y", "..")],
    "link-then-file": [("symlink", "d", "sub"), ("dir", "sub", None), ("file", "d/f", b"f")],
}

REQUESTS = {
    0: {"input": ["hello world", "a second text"], "model": "m"},
    1: {"inputs": ["hello world"], "normalize": True, "truncate": True},
    2: {"inputs": "a sparse query"},
    3: {"query": "what is rust?", "texts": ["Rust is a language", "a crab"], "return_text": True},
    4: {"inputs": ["tokenize me"], "add_special_tokens": True},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="fuzz/seeds")
    ap.add_argument("--images", default="tests/data/images")
    args = ap.parse_args()
    out = pathlib.Path(args.out)

    d = out / "archive"
    d.mkdir(parents=True, exist_ok=True)
    for name, entries in ARCHIVES.items():
        # Layout: [compressed flag, tar stream...]; the target gzips the stream.
        (d / name).write_bytes(b"\x00" + tar_bytes(entries))

    d = out / "image"
    d.mkdir(parents=True, exist_ok=True)
    images = sorted(p for p in pathlib.Path(args.images).iterdir() if p.stat().st_size < 64_000)
    for i, p in enumerate(images):
        # Layout: [model, change_config, key, value_len, value..., image...].
        (d / p.name).write_bytes(bytes([i % 6, 0, 0, 0]) + p.read_bytes())
    (d / "config-size").write_bytes(bytes([0, 1, 0, 17]) + b'{"height": 99999}'
                                    + (pathlib.Path(args.images) / "tiny_1x1.png").read_bytes())

    d = out / "server_request"
    d.mkdir(parents=True, exist_ok=True)
    for route, body in REQUESTS.items():
        # Layout: [route, get, json content type, body...].
        (d / f"route{route}").write_bytes(bytes([route, 0, 1]) + json.dumps(body).encode())
    (d / "token-ids").write_bytes(bytes([0, 0, 1]) + json.dumps({"input": [[101, 7592, 102]]}).encode())
    for route in (5, 6, 7):
        (d / f"get{route}").write_bytes(bytes([route, 1, 0]))

    d = out / "tokenize_cut"
    d.mkdir(parents=True, exist_ok=True)
    # Layout: [tokenizer, repeat, split, text...]; repeated enough to be cut.
    (d / "fox").write_bytes(bytes([1, 63, 5]) + b"The quick brown fox jumps over the lazy dog. ")
    (d / "mixed").write_bytes(bytes([2, 32, 255]) + "向量 🦀!!! [SEP] e\u0301 ".encode())

    d = out / "bm25"
    d.mkdir(parents=True, exist_ok=True)
    d = out / "text_embed"
    d.mkdir(parents=True, exist_ok=True)
    d = out / "tokenizer_files"
    d.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
