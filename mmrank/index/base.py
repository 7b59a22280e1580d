"""Vector index contract: inner-product search over L2-normalised float32 vectors with string ids."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmrank.errors import DataFormatError, IndexCorruptError
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
        """Add one row per id. Rows must be finite (NaN / inf are refused: they would rank arbitrarily)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise ValueError(f"need an (n, d) matrix with one id per row; got {vectors.shape} and {len(ids)} ids")
        if self.dim and vectors.shape[1] != self.dim:
            raise ValueError(f"dimension mismatch: index has {self.dim}, vectors have {vectors.shape[1]}")
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            shown = ", ".join(repr(str(ids[i])) for i in bad[:5])
            raise DataFormatError(f"{bad.size} vector(s) hold NaN or infinite values (ids {shown}); nothing added")
        known = set(self.ids)
        for i in ids:
            if i in known:
                raise ValueError(f"duplicate id {i!r} added to index")
            known.add(i)
        self.dim = vectors.shape[1]
        self._add(vectors)
        self.ids.extend(str(i) for i in ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[Any, list[list[str]]]:
        """Return ``(scores, ids)``, best first, ``k' = min(k, len(self))`` per query.

        ``scores`` is an ``(n, k')`` array; when an approximate index finds fewer than ``k'`` neighbours for some
        query (faiss pads with id -1), that padding is dropped from ids *and* scores alike and ``scores`` is a list
        of one 1-D array per query, each as long as its ids.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if len(self) == 0:
            raise ValueError("search on an empty index")
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"query dimension {queries.shape[-1]} != index dimension {self.dim}")
        if not np.isfinite(queries).all():
            raise DataFormatError("query vectors hold NaN or infinite values")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), len(self))
        scores, idx = self._search(queries, k)
        if self._id_array is None or len(self._id_array) != len(self.ids):
            self._id_array = np.array(self.ids, dtype=object)
        idx = np.asarray(idx)
        scores = np.asarray(scores)
        if (idx < 0).any():  # approximate indexes may return fewer than k (-1 padding): drop it everywhere
            keep = idx >= 0
            return [s[m] for s, m in zip(scores, keep, strict=True)], [
                self._id_array[row[m]].tolist() for row, m in zip(idx, keep, strict=True)
            ]
        return scores, self._id_array[idx].tolist()

    @abstractmethod
    def _add(self, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    # --- persistence ---------------------------------------------------------------------------
    @abstractmethod
    def _save_files(self, writer: store.Writer) -> dict[str, str]:
        """Write data files under fresh names (``writer.array`` / ``writer.blob``); return ``{role: name}``."""

    @abstractmethod
    def _load_files(self, directory: Path, files: dict[str, str], manifest: dict[str, Any]) -> None:
        """Read the data files; check them against ``manifest["count"]`` / ``["dim"]`` (IndexCorruptError)."""

    _roles: ClassVar[tuple[str, ...]] = ()

    def _params(self) -> dict[str, Any]:
        return {}

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Save atomically under a writer lock (see :mod:`mmrank.index.store`).

        A crash mid-save leaves the previous save loadable; only files of the previous save are replaced. A
        non-empty folder that is not an mmrank save is refused unless ``overwrite=True`` (its files are kept).
        """
        d = Path(directory)
        with store.writer(d, overwrite=overwrite) as w:
            files = self._save_files(w)
            files["ids"] = w.blob("ids", ".json", json.dumps(self.ids).encode())
            w.commit(
                {
                    "kind": self.kind,
                    "model_id": self.model_id,
                    "dim": self.dim,
                    "count": len(self.ids),
                    "params": self._params(),
                    "files": files,
                }
            )
        return d

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True) -> VectorIndex:
        """Load any saved index (the manifest names its kind); checksums are verified by default.

        Every name in the manifest must stay inside the folder; ids, dimension and row count are checked against
        the data files. A save published while this load was reading is retried (readers take no lock).
        """
        d = Path(directory)
        for attempt in range(3):
            before = _manifest_stamp(d)
            try:
                return cls._load_once(d, verify=verify)
            except (IndexCorruptError, FileNotFoundError):
                if attempt == 2 or _manifest_stamp(d) == before:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_once(cls, d: Path, *, verify: bool) -> VectorIndex:
        from mmrank import registry
        from mmrank.errors import UnknownNameError

        manifest = store.read_manifest(d, verify=verify)
        kind = manifest.get("kind")
        try:
            target = registry.resolve("index", str(kind))
        except UnknownNameError as e:
            raise IndexCorruptError(f"{d}: manifest kind {kind!r} is not a known index") from e
        if not (isinstance(target, type) and issubclass(target, VectorIndex)):
            raise IndexCorruptError(f"{d}: manifest kind {kind!r} is not a vector index")
        if cls is not VectorIndex and not issubclass(target, cls):
            raise IndexCorruptError(f"{d}: holds a {kind!r} index, not {cls.kind!r}")
        params = manifest.get("params", {})
        if not isinstance(params, dict):
            raise IndexCorruptError(f"{d}: manifest 'params' is not an object")
        count = store.manifest_int(manifest, "count", d)
        dim = store.manifest_int(manifest, "dim", d, minimum=1 if count else 0)
        files = manifest["files"]
        missing = [r for r in ("ids", *target._roles) if r not in files]
        if missing:
            raise IndexCorruptError(f"{d}: manifest names no file for {', '.join(missing)}")
        try:
            obj = target(model_id=str(manifest.get("model_id", "")), **params)
        except (TypeError, ValueError) as e:
            raise IndexCorruptError(f"{d}: manifest params {params!r} do not fit a {kind!r} index ({e})") from e
        obj.ids = store.read_json_list(d, files["ids"], length=count)
        obj.dim = dim
        obj._load_files(d, files, manifest)
        if len(obj) != count:
            raise IndexCorruptError(f"{d}: manifest count {count} != stored ids {len(obj.ids)}")
        return obj


def _manifest_stamp(d: Path) -> tuple[int, int] | None:
    try:
        st = (d / store.MANIFEST).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns
