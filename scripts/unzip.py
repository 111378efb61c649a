"""Extracts members of a zip archive (a wheel), each written to a temporary file beside
its target and then renamed, so an interrupted setup never leaves half a file.

    unzip.py ARCHIVE MEMBER DEST_FILE                     one member, to a file
    unzip.py ARCHIVE --match REGEX --strip PREFIX DEST    members whose whole name matches,
                                                          under DEST without PREFIX
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import zipfile


def extract(z: zipfile.ZipFile, member: str, target: str) -> None:
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with z.open(member) as src:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target) or ".", prefix=".part-")
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive")
    ap.add_argument("member", nargs="?")
    ap.add_argument("dest")
    ap.add_argument("--match")
    ap.add_argument("--strip", default="")
    args = ap.parse_args()
    with zipfile.ZipFile(args.archive) as z:
        if args.match is None:
            extract(z, args.member, args.dest)
            return 0
        names = [n for n in z.namelist() if re.fullmatch(args.match, n)]
        if not names:
            print(f"unzip.py: nothing in {args.archive} matches {args.match}", file=sys.stderr)
            return 1
        for name in names:
            extract(z, name, os.path.join(args.dest, name[len(args.strip):]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
