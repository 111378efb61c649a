"""fastembed.common's names: model sources, pooling types, devices."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Dict, Tuple, Union


@dataclass(frozen=True)
class ModelSource:
    hf: Union[str, None] = None
    url: Union[str, None] = None
    _deprecated_tar_struct: bool = False

    def __post_init__(self) -> None:
        if self.hf is None and self.url is None:
            raise ValueError(f"At least one source should be set, current sources: hf={self.hf}, url={self.url}")


class PoolingType(str, Enum):
    CLS = "CLS"
    MEAN = "MEAN"
    LAST_TOKEN = "LAST_TOKEN"
    DISABLED = "DISABLED"


class Device(str, Enum):
    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


OnnxProvider = Union[str, Tuple[str, Dict[Any, Any]]]
PathInput = Union[str, Path]
ImageInput = Any


def _pooling_name(pooling: Any) -> str:
    return str(getattr(pooling, "value", pooling)).upper()


def _sources_dict(sources: Any) -> dict:
    if isinstance(sources, dict):
        return sources
    out = {}
    if getattr(sources, "hf", None):
        out["hf"] = sources.hf
    if getattr(sources, "url", None):
        out["url"] = sources.url
    if getattr(sources, "_deprecated_tar_struct", False):
        out["deprecated_tar_struct"] = True
    return out


__all__ = ["Device", "ImageInput", "ModelSource", "OnnxProvider", "PathInput", "PoolingType"]
