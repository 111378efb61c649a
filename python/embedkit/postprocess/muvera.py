"""MUVERA fixed-dimensional encodings, as fastembed.postprocess.Muvera."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._embedkit import MuveraCore


class Muvera:
    def __init__(self, dim: int, k_sim: int = 5, dim_proj: int = 16, r_reps: int = 20, random_seed: int = 42):
        if dim_proj > dim:
            raise ValueError(f"Cannot project to a higher dimensionality (dim_proj={dim_proj} > dim={dim})")
        self.dim, self.k_sim, self.dim_proj, self.r_reps = dim, k_sim, dim_proj, r_reps
        self._core = MuveraCore(dim, k_sim, dim_proj, r_reps, random_seed)

    @classmethod
    def from_multivector_model(cls, model: Any, k_sim: int = 5, dim_proj: int = 16, r_reps: int = 20,
                               random_seed: int = 42) -> "Muvera":
        return cls(dim=model.embedding_size, k_sim=k_sim, dim_proj=dim_proj, r_reps=r_reps,
                   random_seed=random_seed)

    @property
    def embedding_size(self) -> int:
        return self._core.embedding_size

    def process_document(self, vectors: np.ndarray) -> np.ndarray:
        return self._core.process_document(np.ascontiguousarray(vectors, dtype=np.float32))

    def process_query(self, vectors: np.ndarray) -> np.ndarray:
        return self._core.process_query(np.ascontiguousarray(vectors, dtype=np.float32))

    def process(self, vectors: np.ndarray, fill_empty_clusters: bool = True, normalize_by_count: bool = True) -> np.ndarray:
        return self._core.process(np.ascontiguousarray(vectors, dtype=np.float32), fill_empty_clusters, normalize_by_count)


__all__ = ["Muvera"]
