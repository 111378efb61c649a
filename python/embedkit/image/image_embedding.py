from .._core import ImageEmbedding

__all__ = ["ImageEmbedding"]
