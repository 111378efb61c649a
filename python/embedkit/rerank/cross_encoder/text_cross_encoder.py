from ..._core import TextCrossEncoder

__all__ = ["TextCrossEncoder"]
