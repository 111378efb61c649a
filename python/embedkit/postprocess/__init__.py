"""fastembed.postprocess: MUVERA fixed-dimensional encodings."""

from .muvera import Muvera

__all__ = ["Muvera"]
