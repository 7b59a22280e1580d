"""FAISS indexes (Johnson, Douze & Jegou, "Billion-scale similarity search with GPUs", arXiv 1702.08734).

Flat (exact), IVF-Flat and HNSW over inner product. With faiss-gpu and CUDA present, flat and IVF
indexes are moved to the GPU for search (``use_gpu=None`` decides automatically). Saved with
``faiss.serialize_index`` (a flat binary format, not pickle) under the atomic manifest of
:mod:`mmrank.index.store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmrank.errors import IndexCorruptError, MissingDependencyError
from mmrank.index import store
from mmrank.index.base import VectorIndex


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependencyError("FAISS indexes need faiss: pip install faiss-cpu (or mmrank[gpu])") from e
    return faiss


def gpu_available() -> bool:
    faiss = _faiss()
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


class _FaissIndex(VectorIndex):
    kind: ClassVar[str] = "faiss"

    def __init__(self, *, model_id: str = "", use_gpu: bool | None = None) -> None:
        super().__init__(model_id=model_id)
        self.use_gpu = use_gpu
        self._index: Any = None
        self._gpu_index: Any = None

    def _build(self, dim: int) -> Any:
        raise NotImplementedError

    def _train(self, vectors: np.ndarray) -> None:
        """Indexes that need training (IVF) train on the first batch added."""

    def _add(self, vectors: np.ndarray) -> None:
        if self._index is None:
            self._index = self._build(vectors.shape[1])
            self._train(vectors)
        self._index.add(vectors)
        self._gpu_index = None

    def _searcher(self) -> Any:
        want_gpu = gpu_available() if self.use_gpu is None else self.use_gpu
        if not want_gpu or self.kind == "faiss-hnsw":  # HNSW has no GPU implementation
            return self._index
        if self._gpu_index is None:
            faiss = _faiss()
            self._gpu_index = faiss.index_cpu_to_all_gpus(self._index)
        return self._gpu_index

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = self._searcher().search(queries, k)
        return scores, idx

    _roles = ("faiss",)

    def _save_files(self, writer: store.Writer) -> dict[str, str]:
        data = _faiss().serialize_index(self._index)
        return {"faiss": writer.blob("index", ".faiss", np.asarray(data).tobytes())}

    def _load_files(self, directory: Path, files: dict[str, str], manifest: dict[str, Any]) -> None:
        p = store.safe_name(directory, files["faiss"])
        raw = np.frombuffer(p.read_bytes(), dtype=np.uint8)
        try:
            index = _faiss().deserialize_index(raw)
        except RuntimeError as e:
            raise IndexCorruptError(f"{p}: not a faiss index ({str(e).splitlines()[0] if str(e) else e})") from e
        if index.ntotal != len(self.ids) or index.d != self.dim:
            raise IndexCorruptError(
                f"{p}: faiss index holds {index.ntotal} vectors of dimension {index.d}; "
                f"manifest says {len(self.ids)} of dimension {self.dim}"
            )
        self._index = index
        self._gpu_index = None


class FaissFlatIndex(_FaissIndex):
    """Exact inner-product search with ``IndexFlatIP``."""

    kind: ClassVar[str] = "faiss-flat"

    def _build(self, dim: int) -> Any:
        return _faiss().IndexFlatIP(dim)


class FaissIVFIndex(_FaissIndex):
    """Inverted file with flat lists (``IndexIVFFlat``), ``nlist`` cells, ``nprobe`` probed at search.

    Trained by k-means on the first batch added; ``nlist`` defaults to ~4*sqrt(n), capped by n/39
    (FAISS wants >= 39 points per centroid).
    """

    kind: ClassVar[str] = "faiss-ivf"

    def __init__(self, *, model_id: str = "", nlist: int | None = None, nprobe: int = 16, use_gpu: bool | None = None):
        super().__init__(model_id=model_id, use_gpu=use_gpu)
        self.nlist = nlist
        self.nprobe = nprobe

    def _build(self, dim: int) -> Any:
        self._dim = dim
        return None

    def _train(self, vectors: np.ndarray) -> None:
        faiss = _faiss()
        n = len(vectors)
        nlist = self.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
        self.nlist = nlist
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        self._index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        self._index.train(vectors)
        self._index.nprobe = self.nprobe

    def _load_files(self, directory: Path, files: dict[str, str], manifest: dict[str, Any]) -> None:
        super()._load_files(directory, files, manifest)
        self._index.nprobe = self.nprobe

    def _params(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self.nprobe}


class FaissHNSWIndex(_FaissIndex):
    """HNSW graph (Malkov & Yashunin, arXiv 1603.09320) over inner product; ``M`` links, ``ef_search``."""

    kind: ClassVar[str] = "faiss-hnsw"

    def __init__(
        self, *, model_id: str = "", m: int = 32, ef_construction: int = 200, ef_search: int = 128, use_gpu=None
    ):
        super().__init__(model_id=model_id, use_gpu=False)
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search

    def _build(self, dim: int) -> Any:
        faiss = _faiss()
        index = faiss.IndexHNSWFlat(dim, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _load_files(self, directory: Path, files: dict[str, str], manifest: dict[str, Any]) -> None:
        super()._load_files(directory, files, manifest)
        self._index.hnsw.efSearch = self.ef_search

    def _params(self) -> dict[str, Any]:
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}
