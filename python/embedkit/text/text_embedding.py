from .._core import TextEmbedding

__all__ = ["TextEmbedding"]
