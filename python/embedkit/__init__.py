"""embedkit: fastembed's Python API on a Rust engine.

Switching from fastembed is one import line::

    from embedkit import TextEmbedding      # was: from fastembed import TextEmbedding
"""

from ._core import (
    BgeM3Embedding,
    EmbeddingModel,
    DownloadError,
    EmbedkitError,
    InvalidInputError,
    ModelMismatchError,
    UnknownModelError,
    UnsupportedError,
    ImageEmbedding,
    LateInteractionMultimodalEmbedding,
    LateInteractionTextEmbedding,
    SparseEmbedding,
    SparseTextEmbedding,
    TextCrossEncoder,
    TextEmbedding,
)
from ._embedkit import CALL_OPTIONS, loaded_runtime_library
from ._fastembed import install_as_fastembed

__version__ = "0.1.0"

__all__ = [
    "BgeM3Embedding",
    "CALL_OPTIONS",
    "EmbeddingModel",
    "DownloadError",
    "EmbedkitError",
    "InvalidInputError",
    "ModelMismatchError",
    "UnknownModelError",
    "UnsupportedError",
    "ImageEmbedding",
    "LateInteractionMultimodalEmbedding",
    "LateInteractionTextEmbedding",
    "SparseEmbedding",
    "SparseTextEmbedding",
    "TextCrossEncoder",
    "TextEmbedding",
    "install_as_fastembed",
    "loaded_runtime_library",
]
