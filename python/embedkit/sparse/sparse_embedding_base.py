from .._core import SparseEmbedding

__all__ = ["SparseEmbedding"]
