from .._core import LateInteractionMultimodalEmbedding

__all__ = ["LateInteractionMultimodalEmbedding"]
