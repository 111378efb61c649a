from .._core import SparseEmbedding, SparseTextEmbedding

__all__ = ["SparseEmbedding", "SparseTextEmbedding"]
