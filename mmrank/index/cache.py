"""Embedding cache keyed by content hash, persisted atomically (manifest + ``.npy``, no pickle).

Keys are usually :func:`content_key` of an image file or of a text, so a renamed file hits the cache
and an edited one misses it. One cache directory belongs to one ``model_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmrank.errors import IndexCorruptError
from mmrank.index import store


def content_key(source: str | Path | bytes) -> str:
    """sha256 of a file's bytes (for a path) or of raw bytes / UTF-8 text."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, Path) or (isinstance(source, str) and Path(source).is_file()):
        return store.sha256_file(Path(source))
    return hashlib.sha256(str(source).encode("utf-8")).hexdigest()


class EmbeddingCache:
    """``{key: vector}`` for one model. Call :meth:`save` to persist what was added."""

    def __init__(self, directory: str | Path, model_id: str) -> None:
        self.directory = Path(directory)
        self.model_id = model_id
        self._pos: dict[str, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._dirty = False
        if (self.directory / store.MANIFEST).is_file():
            m = store.read_manifest(self.directory)
            if m.get("kind") != "embedding-cache" or m.get("model_id") != model_id:
                raise IndexCorruptError(
                    f"{self.directory}: cache is for {m.get('model_id')!r} ({m.get('kind')}), not {model_id!r}"
                )
            keys = json.loads((self.directory / m["files"]["keys"]).read_text())
            self._vectors = store.read_array(self.directory, m["files"]["vectors"]).astype(np.float32, copy=False)
            self._pos = {k: i for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, key: str) -> bool:
        return key in self._pos

    def _flush(self) -> None:
        if self._pending:
            parts = ([self._vectors] if self._vectors.size else []) + self._pending
            self._vectors = np.concatenate(parts).astype(np.float32, copy=False)
            self._pending = []

    def get_many(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(found mask, vectors of the found keys in order)``."""
        self._flush()
        mask = np.array([k in self._pos for k in keys], dtype=bool)
        rows = [self._pos[k] for k, m in zip(keys, mask, strict=True) if m]
        dim = self._vectors.shape[1] if self._vectors.ndim == 2 and self._vectors.size else 0
        vecs = self._vectors[rows] if rows else np.zeros((0, dim), dtype=np.float32)
        return mask, vecs

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError("put_many needs one row per key")
        n = len(self._pos)  # next free row (pending rows are already counted in _pos)
        new_rows = []
        for k, v in zip(keys, vectors, strict=True):
            if k in self._pos:
                continue
            self._pos[k] = n
            n += 1
            new_rows.append(v)
        if new_rows:
            self._pending.append(np.stack(new_rows))
            self._dirty = True

    def save(self) -> None:
        """Persist atomically (a crash leaves the previous cache loadable)."""
        if not self._dirty:
            return
        self._flush()
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._pos, key=self._pos.__getitem__)
        files = {
            "vectors": store.write_array(self.directory, "vectors", self._vectors),
            "keys": store.write_blob(self.directory, "keys", ".json", json.dumps(keys).encode()),
        }
        store.commit(
            self.directory,
            {
                "kind": "embedding-cache",
                "model_id": self.model_id,
                "dim": int(self._vectors.shape[1]),
                "count": len(keys),
                "files": files,
            },
        )
        self._dirty = False
