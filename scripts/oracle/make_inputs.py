"""Writes the test inputs: hand-picked edge cases and a seeded corpus of 1000 documents
with a natural mix of lengths (a few words to well past 512 tokens).

usage: make_inputs.py --out tests/data
"""

import argparse
import json
from pathlib import Path

import numpy as np

WORDS = """
the of and to in is that for it as with was on be by this are from at or an have not
which but all were they their has more one can its also been other when there into
some than these two would may only time new first any most over such through after used
system data model models embedding embeddings vector vectors search query queries document
documents index retrieval language text token tokens batch memory speed latency server
network request response cache file files disk thread threads process processes runtime
library function functions value values result results error errors input output inputs
outputs training inference layer layers attention weight weights matrix matrices sparse
dense similarity distance cosine score scores ranking rerank semantic meaning sentence
sentences paragraph paragraphs word words character characters unicode encoding decoding
compression storage database collection point points payload filter filters field fields
kernel compiler parser grammar syntax type types generic trait struct enum module crate
package version release update upgrade install configure configuration option options
benchmark measure measured throughput performance efficient efficiently quickly slowly
large small long short simple complex robust reliable secure safe unsafe correct wrong
because although however therefore meanwhile instead especially usually often rarely
engineer engineers user users team teams project projects issue issues review reviews
river mountain city village forest ocean garden kitchen library museum station market
morning evening winter summer autumn spring weather history science music painting
""".split()


def sentence(rng: np.random.RandomState, n: int) -> str:
    words = [WORDS[i] for i in rng.randint(0, len(WORDS), size=n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def paragraph(rng: np.random.RandomState, n_words: int) -> str:
    out, left = [], n_words
    while left > 0:
        n = int(min(left, rng.randint(4, 25)))
        out.append(sentence(rng, n))
        left -= n
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    rng = np.random.RandomState(20261124)
    args.out.mkdir(parents=True, exist_ok=True)

    long_doc = paragraph(rng, 3000)
    edge = [
        "",
        " ",
        " \t  \u3000 ",
        "hello world",
        "Hello, World! How are you today?",
        "The quick brown fox jumps over the lazy dog.",
        long_doc,
        "我们的模型可以处理中文文本。東京は日本の首都です。한국어 문장도 있습니다.",
        "مرحبا بالعالم، هذا نص عربي لاختبار النماذج متعددة اللغات.",
        "Emoji: I love 🍕 and 🚀 ✨ — family 👩‍👩‍👧‍👦, flags 🇫🇷🇯🇵, skin tone 👍🏽.",
        "Combining marks: Cafe\u0301 vs Café, n\u0303, Z\u0334\u0321a\u0337l\u0338g\u0336o\u0335.",
        "Привет, мир! Это тест на русском языке.",
        "नमस्ते दुनिया, यह हिंदी में एक परीक्षण है।",
        "a\u0000b control \u0007 chars \u200b zero width \ufeff bom",
        "!!!??? ... ;;; ((( ))) --- ___ ***",
        "https://example.com/path?query=1&x=y#frag user@example.org",
        "fn main() { println!(\"{}\", 1 + 2); } // code",
        "UPPER lower MiXeD 12345 3.14159 1e-10 0x1F",
        " ".join(["token"] * 700),
        sentence(rng, 40),
    ]
    (args.out / "edge_inputs.json").write_text(json.dumps(edge, ensure_ascii=False, indent=1) + "\n")

    corpus = []
    for _ in range(1000):
        n = int(np.clip(rng.lognormal(mean=3.8, sigma=0.9), 3, 450))
        corpus.append(paragraph(rng, n))
    (args.out / "corpus.txt").write_text("\n".join(corpus) + "\n")
    print(f"wrote {len(edge)} edge inputs and {len(corpus)} corpus documents to {args.out}")


if __name__ == "__main__":
    main()
