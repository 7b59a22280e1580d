"""SuperGlobal reranking by feature refinement (arXiv 2308.06954, modules ``MDescAug`` + ``RerankwMDA``).

For each query ``q`` with top-M database descriptors ``x_1..x_M`` (defaults M=400, K=9, beta=0.15):

1. refine every ``x_i`` with its K+1 nearest neighbours inside the top-M set (by dot product, self included):
   weights are 1 for the nearest (itself) and ``beta * s_ij`` for the other K; ``x'_i = sum w_j x_j / sum w_j``
   (no renormalisation);
2. ``s1_i = q . x'_i``;
3. refine the query: ``q' = max`` (element-wise) over the top-(K+1) refined ``x'`` in ``s1`` order
   (``q`` itself is not included);
4. final score ``(s1_i + q' . x'_i) / 2``; the top-M are re-sorted, items beyond M keep their order.

Cost per query: one ``M x M`` similarity plus dot products; no local features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mmrank.encoders.base import Encoder
from mmrank.errors import DataFormatError
from mmrank.rerank.base import Outcome, Reranker
from mmrank.types import Hit, Query

M_DEFAULT, K_DEFAULT, BETA_DEFAULT = 400, 9, 0.15


def refine_topm(
    q: torch.Tensor,
    xt: torch.Tensor,
    *,
    K: int = K_DEFAULT,
    beta: float = BETA_DEFAULT,
    sim: torch.Tensor | None = None,
) -> torch.Tensor:
    """Final SuperGlobal scores for queries ``q (B, d)`` and their top-M descriptors ``xt (B, M, d)``.

    Returns ``(B, M)`` scores aligned with ``xt``. ``K + 1`` is capped at ``M``. ``sim`` (``(B, M, M)``, optional)
    is the descriptors' similarity matrix when the caller has it already (see :func:`refine_lists`).

    The refined descriptors are ``X' = D^-1 W X`` with ``W`` the sparse (K+1 non-zeros per row) neighbour-weight
    matrix and ``D`` its row sums, so every score against them is a sparse product with ``X``'s dot products:
    ``s1 = D^-1 W (X q)`` and ``s2 = D^-1 W (X q')``. Only the K+1 refined rows that form ``q'`` are materialised;
    the one dense cost is the ``M x M`` neighbour similarity (the naive form gathers a ``(M, K+1, d)`` tensor).
    """
    if sim is None:
        sim = torch.bmm(xt, xt.transpose(1, 2))  # (B, M, M)
    d = xt.shape[-1]
    return _refine(
        q,
        sim,
        dot=lambda v: torch.bmm(xt, v.unsqueeze(-1)).squeeze(-1),
        take=lambda idx: torch.gather(xt, 1, idx.unsqueeze(-1).expand(-1, -1, d)),
        K=K,
        beta=beta,
    )


def _refine(
    q: torch.Tensor,
    sim: torch.Tensor,
    *,
    dot: Callable[[torch.Tensor], torch.Tensor],
    take: Callable[[torch.Tensor], torch.Tensor],
    K: int,
    beta: float,
) -> torch.Tensor:
    """The refinement given each list's similarities ``sim (B, M, M)``, ``dot(v) -> (B, M)`` (descriptor . v for
    every list entry) and ``take(idx (B, J)) -> (B, J, d)`` (the descriptors at list positions ``idx``)."""
    b, m = sim.shape[:2]
    k1 = min(K + 1, m)
    val, nbr = sim.topk(k1, dim=-1)  # (B, M, K+1), nearest first
    w = val * beta
    w[..., 0] = 1.0
    wsum = w.sum(-1)  # (B, M)

    def refine_dot(v: torch.Tensor) -> torch.Tensor:  # (B, M) = D^-1 W (X v) for v (B, d)
        return (torch.gather(dot(v).unsqueeze(1).expand(-1, m, -1), 2, nbr) * w).sum(-1) / wsum

    s1 = refine_dot(q)
    top = s1.topk(k1, dim=-1).indices  # (B, K+1): the rows that refine the query
    nb_top = torch.gather(nbr, 1, top.unsqueeze(-1).expand(-1, -1, k1))  # (B, K+1, K+1)
    w_top = torch.gather(w, 1, top.unsqueeze(-1).expand(-1, -1, k1))
    rows = take(nb_top.reshape(b, -1)).view(b, k1, k1, -1)  # only (K+1)^2 descriptors, not M (K+1)
    x_top = (rows * w_top.unsqueeze(-1)).sum(2) / w_top.sum(-1, keepdim=True)  # (B, K+1, d)
    q_ref = x_top.amax(1)  # (B, d)
    s2 = refine_dot(q_ref)
    return (s1 + s2) / 2.0


def refine_lists(
    q: torch.Tensor,
    x: torch.Tensor,
    top: torch.Tensor,
    *,
    K: int = K_DEFAULT,
    beta: float = BETA_DEFAULT,
    gram: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """:func:`refine_topm` for queries ``q (B, d)`` whose top-M lists are rows ``top (B, M)`` of a database ``x``.

    ``gram`` = ``(rows, G)`` with ``G = x[rows] @ x[rows].T`` over a sorted set of rows covering ``top`` (from
    :func:`shared_gram`): the per-query ``M x M`` similarities are then gathered from it instead of recomputed.
    """
    if gram is None:
        return refine_topm(q, x[top], K=K, beta=beta)
    rows, g = gram
    xu = x[rows]
    pos = torch.searchsorted(rows, top.contiguous())  # (B, M) positions in the shared Gram
    return _refine(
        q,
        torch.take(g, pos.unsqueeze(-1) * g.shape[0] + pos.unsqueeze(-2)),  # (B, M, M), gathered, not recomputed
        dot=lambda v: torch.gather(v @ xu.T, 1, pos),
        take=lambda idx: xu[torch.gather(pos, 1, idx)],
        K=K,
        beta=beta,
    )


def shared_gram(
    x: torch.Tensor, top: torch.Tensor, *, max_rows: int = 8192
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The similarity matrix of every database row in any top-M list, when computing it once is cheaper than one
    ``M x M`` product per query (``u^2 < Q M^2`` for ``u`` distinct rows) and it fits (``u <= max_rows``).

    Queries over one collection share most of their neighbours, so at the paper's M=400 this turns ``Q`` products
    of ``M x M x d`` into one of ``u x u x d``; ``None`` when it would not pay (few queries, huge collection).
    """
    rows = torch.unique(top)
    u = int(rows.numel())
    if u > max_rows or u * u >= top.numel() * top.shape[1]:
        return None
    xu = x[rows]
    return rows, xu @ xu.T


def refine_topm_naive(q: np.ndarray, xt: np.ndarray, *, K: int = K_DEFAULT, beta: float = BETA_DEFAULT) -> np.ndarray:
    """The same scores for one query ``q (d,)`` and its top-M ``xt (M, d)``, written as the paper's steps
    (refine every descriptor, score, refine the query, score again) with numpy. A reference for tests and the
    baseline of ``benchmarks/superglobal_refine.py``."""
    m = xt.shape[0]
    k1 = min(K + 1, m)
    sim = xt @ xt.T
    nbr = np.argsort(-sim, axis=1, kind="stable")[:, :k1]
    w = np.take_along_axis(sim, nbr, 1) * beta
    w[:, 0] = 1.0
    x_ref = (xt[nbr] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
    s1 = x_ref @ q
    top = np.argsort(-s1, kind="stable")[:k1]
    q_ref = x_ref[top].max(0)
    return (s1 + x_ref @ q_ref) / 2.0


def refine_rerank(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    *,
    M: int = M_DEFAULT,
    K: int = K_DEFAULT,
    beta: float = BETA_DEFAULT,
    exclude: Sequence[int] | np.ndarray | None = None,
    device: str | torch.device | None = None,
    query_block: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Global search plus SuperGlobal reranking of the top-M, for all queries at once.

    ``exclude[i]`` (optional) is a database index removed from query ``i``'s list (leave-one-out when the
    queries are database items); ``M`` is then capped at ``n - 1``. Returns ``(scores, ranks)``, each
    ``(nq, n')`` with ``n'`` the number of candidates per query, best first; items beyond M keep their
    first-stage order with their first-stage scores shifted below the reranked block.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    q = torch.as_tensor(np.asarray(queries, dtype=np.float32) if isinstance(queries, np.ndarray) else queries)
    x = torch.as_tensor(np.asarray(database, dtype=np.float32) if isinstance(database, np.ndarray) else database)
    q, x = q.float().to(dev), x.float().to(dev)
    n = x.shape[0]
    n_cand = n - 1 if exclude is not None else n
    m = max(1, min(M, n_cand))
    all_scores, all_ranks = [], []
    with torch.inference_mode():
        firsts = []
        for s in range(0, q.shape[0], query_block):
            qb = q[s : s + query_block]
            sim = qb @ x.T
            if exclude is not None:
                ex = torch.as_tensor(np.asarray(exclude[s : s + query_block]), dtype=torch.long, device=dev)
                sim[torch.arange(len(qb), device=dev), ex] = -torch.inf
            first_scores, ranks = sim.topk(n_cand, dim=1)  # sorted, best first
            firsts.append((first_scores, ranks))
        gram = shared_gram(x, torch.cat([r[:, :m] for _, r in firsts])) if firsts else None
        for b, (first_scores, ranks) in enumerate(firsts):
            qb = q[b * query_block : (b + 1) * query_block]
            top = ranks[:, :m]
            final = refine_lists(qb, x, top, K=K, beta=beta, gram=gram)
            order = final.argsort(dim=1, descending=True, stable=True)
            head_idx = torch.gather(top, 1, order)
            head_sc = torch.gather(final, 1, order)
            tail_idx, tail_sc = ranks[:, m:], first_scores[:, m:]
            if tail_sc.shape[1]:  # keep the tail strictly below the reranked head, in its first-stage order
                shift = head_sc.amin(1, keepdim=True) - tail_sc[:, :1] - 1.0
                tail_sc = tail_sc + shift
            all_ranks.append(torch.cat([head_idx, tail_idx], 1).cpu())
            all_scores.append(torch.cat([head_sc, tail_sc], 1).cpu())
    return torch.cat(all_scores).numpy(), torch.cat(all_ranks).numpy()


class SuperGlobalReranker(Reranker):
    """SuperGlobal reranking (arXiv 2308.06954) as a :class:`Reranker` over any embedding space.

    Candidate vectors come from ``vectors`` (``{item id: vector}``, e.g. an index's stored vectors), from
    ``item.meta["vector"]``, or are encoded with ``encoder`` (recorded as a fallback); the query vector comes
    from ``query.meta["vector"]`` or ``encoder``. The first ``M`` hits of each list are reranked (the paper's
    M=400, K=9, beta=0.15); the rest keep their order below them.
    """

    name = "superglobal-rerank"
    modalities = frozenset({"image", "text", "image+text", "page"})

    def __init__(
        self,
        *,
        encoder: Encoder | str | None = None,
        encoder_kwargs: Mapping[str, Any] | None = None,
        vectors: Mapping[str, np.ndarray] | None = None,
        M: int = M_DEFAULT,
        K: int = K_DEFAULT,
        beta: float = BETA_DEFAULT,
        model: str | None = None,
        device: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        enc: Encoder | None
        if isinstance(encoder, str):
            from mmrank import registry

            kw = dict(encoder_kwargs or {})
            if model is not None:
                kw.setdefault("model", model)
            if device is not None:
                kw.setdefault("device", device)
            enc = registry.encoder(encoder, **kw)
        else:
            enc = encoder
        self.encoder = enc
        self.vectors = vectors or {}
        self.M, self.K, self.beta = M, K, beta
        self.device = device

    @classmethod
    def from_index(cls, index: Any, encoder: Encoder | None = None, **kwargs: Any) -> SuperGlobalReranker:
        """Use the vectors stored in an :class:`~mmrank.index.exact.ExactIndex` (or any index with ``.vectors``)."""
        vecs = np.asarray(index.vectors, dtype=np.float32)
        return cls(encoder=encoder, vectors=dict(zip(index.ids, vecs)), **kwargs)

    def _query_vector(self, q: Query) -> np.ndarray:
        if "vector" in q.meta:
            return np.asarray(q.meta["vector"], dtype=np.float32)
        if self.encoder is None:
            raise DataFormatError(f"query {q.id!r}: no meta['vector'] and no encoder to compute one")
        return self.encoder.encode_queries([q])[0]

    def _item_vectors(self, hits: list[Hit]) -> tuple[np.ndarray, list[str]]:
        rows: list[np.ndarray | None] = []
        missing = []
        for i, h in enumerate(hits):
            v = self.vectors.get(h.id)
            if v is None and h.item is not None and "vector" in h.item.meta:
                v = h.item.meta["vector"]
            if v is None:
                missing.append(i)
            rows.append(None if v is None else np.asarray(v, dtype=np.float32))
        fallbacks = []
        if missing:
            if self.encoder is None:
                raise DataFormatError(
                    f"{len(missing)} candidates have no cached vector (e.g. {hits[missing[0]].id!r}) and no encoder"
                )
            enc = self.encoder.encode_items([hits[i].item for i in missing])  # type: ignore[misc]
            for i, v in zip(missing, enc):
                rows[i] = v
            fallbacks.append(f"re-encoded {len(missing)} candidates without cached vectors")
        return np.stack(rows).astype(np.float32), fallbacks  # type: ignore[arg-type]

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        out = []
        for q, hits in jobs:
            n = len(hits)
            if n == 0:
                out.append(Outcome([], [], 0))
                continue
            m = min(self.M, n)
            qv = torch.from_numpy(self._query_vector(q))[None]
            xv, fallbacks = self._item_vectors(hits)
            with torch.inference_mode():
                final = refine_topm(qv, torch.from_numpy(xv[:m])[None], K=self.K, beta=self.beta)[0].numpy()
            order = sorted(range(m), key=lambda i: -final[i]) + list(range(m, n))
            floor = float(final.min())
            scores = [float(s) for s in final] + [floor - 1.0 - j for j in range(n - m)]
            out.append(Outcome(order, scores, model_calls=0, fallbacks=fallbacks))
        return out
