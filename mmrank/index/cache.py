"""Embedding cache keyed by content hash, persisted atomically (manifest + ``.npy``, no pickle).

Keys are usually :func:`content_key` of an image file or of a text, so a renamed file hits the cache
and an edited one misses it. One cache directory belongs to one model, named by a ``model_id`` that should
include a fingerprint of the weights' *content* (:func:`mmrank.index.fingerprint.encoder_cache_id`): overwriting a
checkpoint then starts a fresh cache instead of serving vectors of the old weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from mmrank.errors import DataFormatError, IndexCorruptError
from mmrank.index import store


def content_key(source: str | Path | bytes) -> str:
    """Key an item by what it is: a :class:`~pathlib.Path` is a file (sha256 of its bytes, equal to the key of
    those ``bytes``); a ``str`` is always text (``"text:"`` + sha256 of its UTF-8), even when a file of that
    name exists -- pass ``Path(s)`` to key the file."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, Path):
        return store.sha256_file(source)
    if isinstance(source, str):
        return "text:" + hashlib.sha256(source.encode("utf-8")).hexdigest()
    raise TypeError(f"content_key takes a Path, bytes or str, not {type(source).__name__}")


class EmbeddingCache:
    """``{key: vector}`` for one model. Call :meth:`save` to persist what was added."""

    def __init__(
        self, directory: str | Path, model_id: str, *, on_mismatch: Literal["raise", "reset"] = "raise"
    ) -> None:
        """Open (or start) the cache in ``directory``. A cache saved for another ``model_id`` raises
        :class:`IndexCorruptError`, or with ``on_mismatch="reset"`` is ignored and replaced by the next save
        (``self.reset_from`` names the model it was for)."""
        self.directory = Path(directory)
        self.model_id = model_id
        self._pos: dict[str, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._dirty = False
        self.reset_from: str | None = None
        if (self.directory / store.MANIFEST).is_file():
            m = store.read_manifest(self.directory, required=("keys", "vectors"))
            if m.get("kind") != "embedding-cache":
                raise IndexCorruptError(f"{self.directory}: holds a {m.get('kind')!r}, not an embedding cache")
            if m.get("model_id") != model_id:
                if on_mismatch != "reset":
                    raise IndexCorruptError(f"{self.directory}: cache is for {m.get('model_id')!r}, not {model_id!r}")
                self.reset_from = str(m.get("model_id"))
                return
            count = store.manifest_int(m, "count", self.directory)
            dim = store.manifest_int(m, "dim", self.directory)
            keys = store.read_json_list(self.directory, m["files"]["keys"], length=count)
            self._vectors = store.read_array(self.directory, m["files"]["vectors"], shape=(count, dim))
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
        if not np.isfinite(vectors).all():
            raise DataFormatError("refusing to cache NaN or infinite embeddings")
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
        """Persist atomically under the folder's writer lock (a crash leaves the previous cache loadable)."""
        if not self._dirty:
            return
        self._flush()
        keys = sorted(self._pos, key=self._pos.__getitem__)
        with store.writer(self.directory) as w:
            files = {
                "vectors": w.array("vectors", self._vectors),
                "keys": w.blob("keys", ".json", json.dumps(keys).encode()),
            }
            w.commit(
                {
                    "kind": "embedding-cache",
                    "model_id": self.model_id,
                    "dim": int(self._vectors.shape[1]),
                    "count": len(keys),
                    "files": files,
                }
            )
        self._dirty = False
