from .._core import SparseTextEmbedding

__all__ = ["SparseTextEmbedding"]
