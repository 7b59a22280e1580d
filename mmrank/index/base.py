"""Vector index contract: inner-product search over L2-normalised float32 vectors with string ids."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmrank.errors import IndexCorruptError
from mmrank.index import store


class VectorIndex(ABC):
    """Add vectors with ids, search the top-k by inner product, save/load atomically with a manifest."""

    kind: ClassVar[str] = "base"

    def __init__(self, *, model_id: str = "") -> None:
        self.model_id = model_id
        self.ids: list[str] = []
        self.dim = 0
        self._id_array: np.ndarray | None = None  # ids as an object array, for fast fancy indexing

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise ValueError(f"need an (n, d) matrix with one id per row; got {vectors.shape} and {len(ids)} ids")
        if self.dim and vectors.shape[1] != self.dim:
            raise ValueError(f"dimension mismatch: index has {self.dim}, vectors have {vectors.shape[1]}")
        known = set(self.ids)
        for i in ids:
            if i in known:
                raise ValueError(f"duplicate id {i!r} added to index")
            known.add(i)
        self.dim = vectors.shape[1]
        self._add(vectors)
        self.ids.extend(str(i) for i in ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Return ``(scores (n, k'), ids)`` with ``k' = min(k, len(self))``, best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if len(self) == 0:
            raise ValueError("search on an empty index")
        if queries.shape[1] != self.dim:
            raise ValueError(f"query dimension {queries.shape[1]} != index dimension {self.dim}")
        k = min(k, len(self))
        scores, idx = self._search(queries, k)
        if self._id_array is None or len(self._id_array) != len(self.ids):
            self._id_array = np.array(self.ids, dtype=object)
        idx = np.asarray(idx)
        if (idx < 0).any():  # approximate indexes may return fewer than k (-1 padding)
            return scores, [[self.ids[j] for j in row if j >= 0] for row in idx]
        return scores, self._id_array[idx].tolist()

    @abstractmethod
    def _add(self, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    # --- persistence ---------------------------------------------------------------------------
    @abstractmethod
    def _save_files(self, directory: Path) -> dict[str, str]:
        """Write data files under fresh names (``store.write_*``); return ``{role: file name}``."""

    @abstractmethod
    def _load_files(self, directory: Path, files: dict[str, str], manifest: dict[str, Any]) -> None: ...

    def _params(self) -> dict[str, Any]:
        return {}

    def save(self, directory: str | Path) -> Path:
        """Save atomically: a crash mid-save leaves the previous save loadable."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        files = self._save_files(d)
        files["ids"] = store.write_blob(d, "ids", ".json", json.dumps(self.ids).encode())
        store.commit(
            d,
            {
                "kind": self.kind,
                "model_id": self.model_id,
                "dim": self.dim,
                "count": len(self.ids),
                "params": self._params(),
                "files": files,
            },
        )
        return d

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True) -> VectorIndex:
        """Load any saved index (the manifest names its kind); checksums are verified by default."""
        from mmrank import registry

        d = Path(directory)
        manifest = store.read_manifest(d, verify=verify)
        target = registry.resolve("index", manifest["kind"])
        if cls is not VectorIndex and not issubclass(target, cls):
            raise IndexCorruptError(f"{d}: holds a {manifest['kind']!r} index, not {cls.kind!r}")
        obj = target(model_id=manifest.get("model_id", ""), **manifest.get("params", {}))
        obj.ids = json.loads((d / manifest["files"]["ids"]).read_text())
        obj.dim = int(manifest["dim"])
        obj._load_files(d, manifest["files"], manifest)
        if len(obj.ids) != manifest["count"] or len(obj) != manifest["count"]:
            raise IndexCorruptError(f"{d}: manifest count {manifest['count']} != stored ids {len(obj.ids)}")
        return obj
