"""Builds the benchmark inputs from English prose every machine with CPython 3.11 has:
the docstrings of the standard library's modules and the reference manual's topics
(pydoc_data.topics). Sources are parsed, never imported, so nothing runs.

Outputs (one text per line, deterministic for a given Python version):
  corpus.txt   >= 5000 paragraphs with their natural length mix, in a fixed shuffled order
  long.txt     documents of at least 512 tokens (consecutive paragraphs joined)
  queries.txt  short single sentences, as users type queries
"""

import argparse
import ast
import hashlib
import json
import random
import re
import sys
import sysconfig
from pathlib import Path

SEED = 20261124
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "tkinter", "__pycache__"}
WORD = re.compile(r"[A-Za-z][a-z]+")


def prose(paragraph: str) -> str | None:
    """One paragraph as a single line if it reads as English prose, else None."""
    lines = [l.strip() for l in paragraph.strip().splitlines()]
    if not lines or any(l.startswith((">>>", "...", "$ ", "%", "|", "+--", "==", "--")) for l in lines):
        return None
    text = " ".join(l for l in lines if l)
    words = text.split()
    if len(words) < 8:
        return None
    # Mostly words, little code or tables.
    wordish = sum(1 for w in words if WORD.fullmatch(w.strip(".,;:()'\"")))
    if wordish / len(words) < 0.6 or not text[0].isupper():
        return None
    return text


def docstrings(stdlib: Path):
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib)
        if SKIP_DIRS & set(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def topics(stdlib: Path):
    tree = ast.parse((stdlib / "pydoc_data" / "topics.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for v in node.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    yield v.value


def documents(stdlib: Path) -> list[str]:
    """A docstring's prose paragraphs joined make one document (a natural length mix);
    the manual's topics are long, so each of their prose paragraphs is one document."""
    out: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        key = text.lower()
        if key not in seen:
            seen.add(key)
            out.append(text)

    for doc in docstrings(stdlib):
        parts = [p for p in (prose(x) for x in re.split(r"\n\s*\n", doc)) if p]
        if parts:
            add(" ".join(parts))
    for topic in topics(stdlib):
        for x in re.split(r"\n\s*\n", topic):
            p = prose(x)
            if p:
                add(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--long", type=int, default=200)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs = documents(stdlib)
    if len(docs) < args.docs:
        sys.exit(f"only {len(docs)} prose documents found in {stdlib}; need {args.docs}")
    rng = random.Random(SEED)
    rng.shuffle(docs)
    corpus = docs[: args.docs]

    # 512-token documents: paragraphs joined until well past 512 word pieces (~4 chars each).
    long_docs, current = [], []
    for d in docs[args.docs :] + docs[: args.docs]:
        current.append(d)
        if sum(len(x) for x in current) >= 3000:
            long_docs.append(" ".join(current))
            current = []
            if len(long_docs) == args.long:
                break

    sentences = []
    for d in corpus:
        first = re.split(r"(?<=[.?!])\s", d, maxsplit=1)[0]
        if 3 <= len(first.split()) <= 14:
            sentences.append(first)
    queries = sentences[: args.queries]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"python": sys.version.split()[0], "seed": SEED, "available_documents": len(docs)}
    for name, items in (("corpus", corpus), ("long", long_docs), ("queries", queries)):
        data = "".join(t + "\n" for t in items)
        (out / f"{name}.txt").write_text(data, encoding="utf-8")
        info[name] = {"items": len(items), "sha256": hashlib.sha256(data.encode()).hexdigest()}
    (out / "corpus.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
