from .._core import LateInteractionTextEmbedding

__all__ = ["LateInteractionTextEmbedding"]
