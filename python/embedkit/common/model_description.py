from . import ModelSource, PoolingType

__all__ = ["ModelSource", "PoolingType"]
