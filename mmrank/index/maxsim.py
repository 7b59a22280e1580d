"""Multi-vector index with exact and approximate MaxSim search (late interaction).

MaxSim (ColBERT, Khattab & Zaharia, arXiv 2004.12832, eq. 3; ColPali, arXiv 2407.01449, eq. 1): the score of a
query with token vectors ``q_1..q_n`` against an item with token vectors ``d_1..d_m`` is
``sum_i max_j <q_i, d_j>``.

Storage: every item's ``(m_i, dim)`` matrix is appended to one ``float16`` token array (``offsets[i]:offsets[i+1]``
are item ``i``'s rows), saved as ``.npy`` through :mod:`mmrank.index.store` (atomic, locked, checksummed manifest)
and memory-mapped on load. Scores are computed in float32.

* **Exact search** (:meth:`MultiVectorIndex.search`): the tokens of all queries of a batch are stacked into one
  matrix and multiplied with the item tokens chunk by chunk (one GEMM per chunk); per-item maxima come from
  ``np.maximum.reduceat`` over the item offsets and per-query sums from ``np.add.reduceat``. Padding never enters:
  unlike the processors' ``score_retrieval`` (which zero-pads and so lets a padded position win when every real
  similarity of a query token is negative), the maximum runs over real tokens only; the two agree whenever each
  query token's best similarity is >= 0, which holds for trained ColPali / ColQwen2 embeddings.
* **Approximate search** (``approximate=True``), candidate generation then exact re-scoring as in ColBERT's
  end-to-end retrieval (Sec. 3.6) and PLAID (Santhanam et al., arXiv 2205.09707): a faiss index over all item tokens
  returns the ``token_k`` nearest tokens of each query token with their similarities. Each item owning one of them
  gets an approximate score, ``sum_i`` of its best retrieved similarity for query token ``i``, where a query token
  that retrieved none of the item's tokens counts the lowest similarity it retrieved (XTR's missing-similarity
  imputation, Lee et al., arXiv 2304.01982, Sec. 3.2). Only the ``max_candidates`` items of highest approximate
  score are then scored by exact MaxSim, so the exact stage is bounded whatever the data (default
  ``max_candidates = max(128, 4k)``, see :func:`default_candidates`). The faiss index is
  ``faiss.index_factory(dim, ann_factory, inner product)`` (default ``"IVF{nlist},SQ8"``,
  ``nlist = 4 * sqrt(n_tokens)`` rounded to a power of two, at most a 39th of the k-means training sample;
  ``nprobe`` 8, ``token_k`` 32) [gap: ColBERT used IVFPQ
  with P=2000 partitions, p=10 probes and k'=k/2 per query token at k=1000; PLAID's ``ndocs`` is 256 for
  ``k <= 10``, 1024 for ``k <= 100``, ``max(4k, 4096)`` above, before two more pruning stages. The defaults here
  are parameters, tuned on the clustered synthetic pages of ``benchmarks/maxsim.py`` at 10k pages: recall@10
  against exact 0.99 at about 6x the exact speed, ``benchmarks/results/maxsim.md``]. With ``ann_factory="Flat"``,
  ``token_k >= n_tokens`` and ``max_candidates >= len(index)`` every item is scored and the result equals exact
  search.
* **Token pooling** (``pool_factor``): hierarchical token pooling (Clavie, Chaffin & Adams, "Reducing the Footprint
  of Multi-Vector Retrieval with Minimal Performance Impact via Token Pooling", arXiv 2409.14683): each item's tokens
  are clustered by Ward linkage (scipy) into ``max(1, m // pool_factor)`` clusters and each cluster is replaced by
  its mean vector (the paper's choice; no re-normalisation). ``pool_factor=None`` keeps every token.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError, IndexCorruptError, OptionError
from mmrank.index import store

KIND = "maxsim"


def maxsim_naive(query: np.ndarray, doc: np.ndarray) -> float:
    """The definition, one pair at a time: ``sum_i max_j <q_i, d_j>`` (reference for tests and benchmarks)."""
    return float(sum(max(float(np.dot(qi, dj)) for dj in doc) for qi in query))


def pool_tokens(tokens: np.ndarray, pool_factor: int) -> np.ndarray:
    """Hierarchical token pooling (arXiv 2409.14683): Ward clusters, ``max(1, m // pool_factor)`` of them, means."""
    m = tokens.shape[0]
    n_clusters = max(1, m // pool_factor)
    if pool_factor <= 1 or m <= 1 or n_clusters >= m:
        return np.asarray(tokens, dtype=np.float32)
    from scipy.cluster.hierarchy import fcluster, linkage

    x = np.asarray(tokens, dtype=np.float64)
    labels = fcluster(linkage(x, method="ward"), t=n_clusters, criterion="maxclust")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    counts = np.diff(np.r_[starts, m])
    return (np.add.reduceat(x[order], starts, axis=0) / counts[:, None]).astype(np.float32)


class MultiVectorIndex:
    """Per-item token matrices with exact (batched) and approximate (faiss candidates) MaxSim search.

    ``model_id`` names the encoder: adding matrices from another model is refused (scores would be meaningless).
    """

    kind = KIND

    def __init__(
        self,
        *,
        model_id: str = "",
        pool_factor: int | None = None,
        chunk_tokens: int = 1 << 16,
        query_batch: int = 32,
    ) -> None:
        if pool_factor is not None and (isinstance(pool_factor, bool) or int(pool_factor) < 1):
            raise OptionError(f"pool_factor must be a positive integer or None, got {pool_factor!r}")
        self.model_id = model_id
        self.pool_factor = int(pool_factor) if pool_factor else None
        self.chunk_tokens = int(chunk_tokens)
        self.query_batch = int(query_batch)
        self.ids: list[str] = []
        self.dim = 0
        self.tokens: np.ndarray = np.zeros((0, 0), dtype=np.float16)
        self.offsets: np.ndarray = np.zeros(1, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._ann: Any = None
        self._ann_factory: str | None = None
        self._id_array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_tokens(self) -> int:
        self._flush()
        return int(self.offsets[-1])

    def nbytes_per_item(self) -> float:
        """Stored bytes of token data per item (float16)."""
        return 2.0 * self.n_tokens * self.dim / max(1, len(self))

    # --- adding -------------------------------------------------------------------------------------
    def add(self, matrices: Sequence[np.ndarray], ids: Sequence[str], *, model_id: str | None = None) -> None:
        """Add one ``(m_i, dim)`` matrix per id (finite, ``m_i >= 1``); pooled if ``pool_factor`` is set."""
        if model_id is not None:
            if self.model_id and model_id != self.model_id:
                raise DataFormatError(
                    f"items encoded by {model_id!r} cannot join an index built with {self.model_id!r}; "
                    "MaxSim scores of two models are not comparable (build a separate index)"
                )
            self.model_id = model_id
        if len(matrices) != len(ids):
            raise ValueError(f"{len(matrices)} matrices for {len(ids)} ids")
        known = set(self.ids)
        rows = []
        for m, i in zip(matrices, ids, strict=True):
            a = np.asarray(m, dtype=np.float32)
            if a.ndim != 2 or a.shape[0] == 0:
                raise DataFormatError(f"item {i!r}: need a non-empty (tokens, dim) matrix, got shape {a.shape}")
            if self.dim and a.shape[1] != self.dim:
                raise DataFormatError(f"item {i!r}: dimension {a.shape[1]} != index dimension {self.dim}")
            if not np.isfinite(a).all():
                raise DataFormatError(f"item {i!r}: token matrix holds NaN or infinite values; nothing added")
            if str(i) in known:
                raise ValueError(f"duplicate id {i!r} added to index")
            known.add(str(i))
            self.dim = a.shape[1]
            rows.append(pool_tokens(a, self.pool_factor) if self.pool_factor else a)
        self._pending.extend(r.astype(np.float16) for r in rows)
        self.ids.extend(str(i) for i in ids)
        self._ann = None  # token set changed

    def _flush(self) -> None:
        if not self._pending:
            return
        lengths = np.array([p.shape[0] for p in self._pending], dtype=np.int64)
        parts = [np.asarray(self.tokens)] if self.tokens.size else []
        self.tokens = np.ascontiguousarray(np.concatenate(parts + self._pending).astype(np.float16, copy=False))
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self._pending = []

    def matrix(self, i: int) -> np.ndarray:
        """Item ``i``'s stored token matrix (float16)."""
        self._flush()
        return np.asarray(self.tokens[self.offsets[i] : self.offsets[i + 1]])

    # --- searching ----------------------------------------------------------------------------------
    def _check_queries(self, queries: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(self) == 0:
            raise ValueError("search on an empty index")
        out = []
        for n, q in enumerate(queries):
            a = np.asarray(q, dtype=np.float32)
            if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] != self.dim:
                raise DataFormatError(f"query {n}: need a non-empty (tokens, {self.dim}) matrix, got {a.shape}")
            if not np.isfinite(a).all():
                raise DataFormatError(f"query {n}: token matrix holds NaN or infinite values")
            out.append(a)
        return out

    def scores(self, queries: Sequence[np.ndarray], items: np.ndarray | None = None) -> np.ndarray:
        """Exact MaxSim ``(n_queries, n_items)`` against all items (or the item indices ``items``), float32."""
        self._flush()
        qs = self._check_queries(queries)
        if items is None:
            tokens, offsets = self.tokens, self.offsets
        else:
            items = np.asarray(items, dtype=np.int64)
            starts, ends = self.offsets[items], self.offsets[items + 1]
            offsets = np.concatenate([[0], np.cumsum(ends - starts)])
            tokens = np.concatenate([self.tokens[a:b] for a, b in zip(starts, ends, strict=True)])
        out = np.empty((len(qs), len(offsets) - 1), dtype=np.float32)
        for b in range(0, len(qs), self.query_batch):
            out[b : b + self.query_batch] = _maxsim_block(
                qs[b : b + self.query_batch], tokens, offsets, self.chunk_tokens
            )
        return out

    def search(
        self,
        queries: Sequence[np.ndarray],
        k: int,
        *,
        approximate: bool = False,
        token_k: int = 32,
        nprobe: int = 8,
        max_candidates: int | None = None,
        ann_factory: str | None = None,
    ) -> tuple[list[np.ndarray], list[list[str]]]:
        """Top-``k`` ``(scores, ids)`` per query, best first (ties: insertion order).

        ``approximate=True`` scores exactly only the ``max_candidates`` items (default: :func:`default_candidates`)
        of best approximate score among those owning one of the ``token_k`` nearest tokens of some query token
        (faiss, see the module docstring); a query may then get fewer than ``k`` hits.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise OptionError(f"k must be a positive integer, got {k!r}")
        qs = self._check_queries(queries)
        if self._id_array is None or len(self._id_array) != len(self.ids):
            self._id_array = np.array(self.ids, dtype=object)
        out_s, out_i = [], []
        if not approximate:
            full = self.scores(qs)
            for row in full:
                top = _topk(row, k)
                out_s.append(row[top])
                out_i.append(self._id_array[top].tolist())
            return out_s, out_i
        cap = default_candidates(k) if max_candidates is None else max_candidates
        cands = self.candidates(qs, token_k=token_k, nprobe=nprobe, max_candidates=cap, ann_factory=ann_factory)
        for q, c in zip(qs, cands, strict=True):  # each query's own (bounded) candidates, scored exactly
            row = self.scores([q], c)[0] if len(c) else np.zeros(0, dtype=np.float32)
            top = _topk(row, k)
            out_s.append(row[top])
            out_i.append(self._id_array[c[top]].tolist())
        return out_s, out_i

    # --- approximate candidate generation -------------------------------------------------------------
    def build_ann(self, factory: str | None = None, *, train_size: int = 1 << 18, seed: int = 0) -> Any:
        """Build (train and fill) the faiss token index; ``factory`` may use ``{nlist}``."""
        import faiss

        self._flush()
        n = self.n_tokens
        nlist = max(1, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))
        nlist = min(nlist, max(1, min(n, train_size) // 39))  # faiss wants >= 39 training points per centroid
        spec = (factory or "IVF{nlist},SQ8").format(nlist=nlist)
        index = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n, size=min(n, train_size), replace=False))
            index.train(np.ascontiguousarray(self.tokens[sample], dtype=np.float32))
        for s in range(0, n, self.chunk_tokens * 4):
            index.add(np.ascontiguousarray(self.tokens[s : s + self.chunk_tokens * 4], dtype=np.float32))
        self._ann, self._ann_factory = index, (factory or "IVF{nlist},SQ8")
        return index

    def candidates(
        self,
        queries: Sequence[np.ndarray],
        *,
        token_k: int = 32,
        nprobe: int = 8,
        max_candidates: int | None = None,
        ann_factory: str | None = None,
    ) -> list[np.ndarray]:
        """Per query, the sorted indices of the (at most ``max_candidates``; ``None``: all) items of best approximate
        score among those owning one of each query token's ``token_k`` nearest tokens (module docstring)."""
        import faiss

        if isinstance(token_k, bool) or int(token_k) < 1:
            raise OptionError(f"token_k must be a positive integer, got {token_k!r}")
        if max_candidates is not None and (isinstance(max_candidates, bool) or int(max_candidates) < 1):
            raise OptionError(f"max_candidates must be a positive integer or None, got {max_candidates!r}")
        if self._ann is None or (ann_factory is not None and ann_factory != self._ann_factory):
            self.build_ann(ann_factory)
        index = self._ann
        with contextlib.suppress(RuntimeError):  # RuntimeError: not an IVF index
            faiss.extract_index_ivf(index).nprobe = nprobe
        qs = self._check_queries(queries)
        flat = np.ascontiguousarray(np.concatenate(qs))
        sim, tok = index.search(flat, min(int(token_k), index.ntotal))
        bounds = np.cumsum([0] + [q.shape[0] for q in qs])
        n_items = len(self)
        out = []
        for a, b in itertools.pairwise(bounds):
            items, approx = _approximate_scores(sim[a:b], tok[a:b], self.offsets, n_items)
            if max_candidates is not None and len(items) > max_candidates:
                items = items[_topk(approx, int(max_candidates))]
            out.append(np.sort(items))
        return out

    # --- persistence -----------------------------------------------------------------------------------
    def save_into(self, w: store.Writer, *, with_ann: bool = True) -> dict[str, Any]:
        """Write this index's files with ``w``; returns the manifest fields (``files`` included)."""
        import faiss

        self._flush()
        files = {
            "tokens": w.array("tokens", self.tokens.astype(np.float16, copy=False)),
            "offsets": w.array("offsets", self.offsets.astype(np.int64)),
            "ids": w.blob("ids", ".json", json.dumps(self.ids).encode()),
        }
        params: dict[str, Any] = {"pool_factor": self.pool_factor}
        if with_ann and self._ann is not None:
            files["ann"] = w.blob("ann", ".faiss", faiss.serialize_index(self._ann).tobytes())
            params["ann_factory"] = self._ann_factory
        return {
            "kind": self.kind,
            "model_id": self.model_id,
            "dim": self.dim,
            "count": len(self.ids),
            "n_tokens": self.n_tokens,
            "params": params,
            "files": files,
        }

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Atomic save (see :mod:`mmrank.index.store`): a crash mid-save leaves the previous save loadable."""
        d = Path(directory)
        with store.writer(d, overwrite=overwrite) as w:
            w.commit(self.save_into(w))
        return d

    @classmethod
    def load(
        cls, directory: str | Path, *, verify: bool = True, manifest_name: str = store.MANIFEST
    ) -> MultiVectorIndex:
        d = Path(directory)
        m = store.read_manifest(d, verify=verify, name=manifest_name, required=("tokens", "offsets", "ids"))
        return cls.from_manifest(d, m)

    @classmethod
    def from_manifest(cls, d: Path, m: dict[str, Any]) -> MultiVectorIndex:
        """Open the files a (checked) manifest names: tokens memory-mapped, shapes and offsets validated."""
        if m.get("kind") != KIND:
            raise IndexCorruptError(f"{d}: manifest kind {m.get('kind')!r} is not a multi-vector index")
        count = store.manifest_int(m, "count", d)
        dim = store.manifest_int(m, "dim", d, minimum=1 if count else 0)
        n_tokens = store.manifest_int(m, "n_tokens", d)
        params = m.get("params", {})
        if not isinstance(params, dict):
            raise IndexCorruptError(f"{d}: manifest 'params' is not an object")
        files = m["files"]
        try:
            obj = cls(model_id=str(m.get("model_id", "")), pool_factor=params.get("pool_factor"))
        except (TypeError, ValueError, OptionError) as e:
            raise IndexCorruptError(f"{d}: manifest params {params!r} do not fit ({e})") from e
        obj.ids = store.read_json_list(d, files["ids"], length=count)
        obj.dim = dim
        tokens = _load_npy(d, files["tokens"], mmap=True)
        offsets = _load_npy(d, files["offsets"], mmap=False)
        if tokens.dtype != np.float16 or tokens.ndim != 2 or tokens.shape != (n_tokens, dim):
            raise IndexCorruptError(
                f"{d}: token array is {tokens.dtype} {tokens.shape}, manifest says float16 ({n_tokens}, {dim})"
            )
        if offsets.dtype.kind not in "iu" or offsets.shape != (count + 1,):
            raise IndexCorruptError(f"{d}: offsets {offsets.dtype} {offsets.shape} do not fit {count} items")
        if offsets[0] != 0 or offsets[-1] != n_tokens or (np.diff(offsets) < 1).any():
            raise IndexCorruptError(f"{d}: offsets are not increasing from 0 to the token count {n_tokens}")
        obj.tokens, obj.offsets = tokens, offsets.astype(np.int64)
        if "ann" in files:
            import faiss

            p = store.safe_name(d, files["ann"])
            try:
                obj._ann = faiss.deserialize_index(np.fromfile(p, dtype=np.uint8))
            except RuntimeError as e:
                raise IndexCorruptError(f"{p}: unreadable faiss index ({e})") from e
            if obj._ann.ntotal != n_tokens or obj._ann.d != dim:
                raise IndexCorruptError(f"{p}: faiss index holds {obj._ann.ntotal} x {obj._ann.d}, not the tokens")
            obj._ann_factory = params.get("ann_factory")
        return obj


def _load_npy(d: Path, name: str, *, mmap: bool) -> np.ndarray:
    p = store.safe_name(d, name)
    try:
        return np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as e:
        raise IndexCorruptError(f"{p}: unreadable array ({type(e).__name__}: {e})") from e


def default_candidates(k: int) -> int:
    """The default cap on exactly scored items: ``max(128, 4k)`` (4k as PLAID's ``ndocs`` for large ``k``,
    ColBERT ``colbert/searcher.py``; the floor of 128 tuned on ``benchmarks/maxsim.py``)."""
    return max(128, 4 * int(k))


def _approximate_scores(
    sim: np.ndarray, tok: np.ndarray, offsets: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Items owning a retrieved token and their approximate MaxSim (XTR imputation), from faiss ``(n_q, token_k)``.

    For query token ``i`` an item counts its best retrieved similarity; a query token that retrieved no token of
    the item counts the lowest similarity it retrieved (0 when it retrieved nothing).
    """
    valid = tok >= 0  # faiss pads with -1 when fewer than token_k tokens were reachable
    floor = np.where(valid.any(axis=1), np.where(valid, sim, np.inf).min(axis=1), 0.0).astype(np.float64)
    rows = np.broadcast_to(np.arange(tok.shape[0])[:, None], tok.shape)[valid]
    item = np.searchsorted(offsets, tok[valid], side="right") - 1
    key = rows.astype(np.int64) * n_items + item
    vals = sim[valid].astype(np.float64)
    order = np.lexsort((-vals, key))  # per (query token, item): best similarity first
    key, vals = key[order], vals[order]
    first = np.r_[True, key[1:] != key[:-1]]
    key, best = key[first], vals[first]
    gain = best - floor[key // n_items]  # what the item earns above the imputed floor
    items, inv = np.unique(key % n_items, return_inverse=True)
    approx = float(floor.sum()) + np.bincount(inv, weights=gain, minlength=len(items))
    return items, approx.astype(np.float32)


def _topk(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest, best first; ties broken by index (stable)."""
    k = min(k, row.shape[0])
    if k < row.shape[0]:
        part = np.argpartition(-row, k - 1)[:k]
        kth = row[part].min()
        part = np.flatnonzero(row >= kth)  # every tie of the k-th score, so the order below is stable
    else:
        part = np.arange(row.shape[0])
    order = np.lexsort((part, -row[part]))
    return part[order][:k]


def _maxsim_block(qs: Sequence[np.ndarray], tokens: np.ndarray, offsets: np.ndarray, chunk_tokens: int) -> np.ndarray:
    """Exact MaxSim of a few queries against all items: one GEMM per token chunk, reduceat for max and sum."""
    qflat = np.ascontiguousarray(np.concatenate(qs), dtype=np.float32)  # (M, d)
    qstart = np.cumsum([0] + [q.shape[0] for q in qs[:-1]])
    n_items = len(offsets) - 1
    out = np.empty((len(qs), n_items), dtype=np.float32)
    i = 0
    while i < n_items:
        # items i..j-1, about chunk_tokens tokens (at least one item)
        j = int(np.searchsorted(offsets, offsets[i] + chunk_tokens, side="right")) - 1
        j = min(max(j, i + 1), n_items)
        a, b = int(offsets[i]), int(offsets[j])
        chunk = np.asarray(tokens[a:b], dtype=np.float32)
        sim = qflat @ chunk.T  # (M, tokens in chunk)
        best = np.maximum.reduceat(sim, offsets[i:j] - a, axis=1)  # (M, items in chunk)
        out[:, i:j] = np.add.reduceat(best, qstart, axis=0)
        i = j
    return out
