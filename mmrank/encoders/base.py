"""Encoder contract: queries and items in, float32 L2-normalised numpy matrices out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from mmrank.types import Item, Query


class Encoder(ABC):
    """Maps queries and items of the modalities it reads to one vector space.

    ``model_id`` and ``dim`` go into index manifests and cache keys.
    """

    model_id: str = ""
    dim: int = 0
    modalities: frozenset[str] = frozenset({"text"})

    @abstractmethod
    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> np.ndarray:
        """Return an ``(n, dim)`` float32 matrix, one L2-normalised row per query."""

    @abstractmethod
    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> np.ndarray:
        """Return an ``(n, dim)`` float32 matrix, one L2-normalised row per item."""


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
