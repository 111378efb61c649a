"""Writes crates/embedkit/src/postprocess/ziggurat.rs from NumPy's ziggurat tables.

usage: gen_ziggurat.py NUMPY_SOURCE_DIR   (an unpacked numpy-2.4.6 sdist)
"""
import re
import sys
from pathlib import Path

HEADER = "numpy/random/src/distributions/ziggurat_constants.h"
OUT = Path(__file__).resolve().parents[1] / "crates/embedkit/src/postprocess/ziggurat.rs"


def table(text: str, name: str) -> list:
    m = re.search(r"static const \w+ " + name + r"\[\] = \{(.*?)\};", text, re.S)
    return [x.strip() for x in m.group(1).replace("\n", " ").split(",") if x.strip()]


def main() -> None:
    text = (Path(sys.argv[1]) / HEADER).read_text()
    ki = [int(x.rstrip("UL"), 16) for x in table(text, "ki_double")]
    wi = [float(x) for x in table(text, "wi_double")]
    fi = [float(x) for x in table(text, "fi_double")]
    assert len(ki) == len(wi) == len(fi) == 256
    lines = [
        "//! The 256-layer ziggurat tables of NumPy's `Generator.standard_normal` (double",
        "//! precision), as data: `numpy/random/src/distributions/ziggurat_constants.h` of NumPy",
        "//! 2.4.6 (BSD-3-Clause, Copyright (c) 2005-2025 NumPy Developers). They cannot be",
        "//! recomputed: NumPy generated them at a higher precision than `f64` arithmetic gives,",
        "//! and MUVERA's random hyperplanes must be NumPy's to the bit.",
        "//! Regenerate with `scripts/gen_ziggurat.py <numpy source dir>`.",
        "",
        "#![allow(clippy::unreadable_literal, clippy::excessive_precision)]",
        "",
        "pub(crate) const NOR_R: f64 = 3.6541528853610087963519472518;",
        "pub(crate) const NOR_INV_R: f64 = 0.27366123732975827203338247596;",
        "",
    ]

    def emit(name, ty, vals, fmt):
        lines.append(f"pub(crate) const {name}: [{ty}; 256] = [")
        for i in range(0, 256, 3):
            lines.append("    " + " ".join(fmt(v) + "," for v in vals[i:i + 3]))
        lines.append("];\n")

    def float_literal(v):
        r = repr(v)
        return r if ("e" in r or "." in r) else r + ".0"

    emit("KI", "u64", ki, lambda v: f"0x{v:016X}")
    emit("WI", "f64", wi, float_literal)
    emit("FI", "f64", fi, float_literal)
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
