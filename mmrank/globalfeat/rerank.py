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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mmrank.encoders.base import Encoder
from mmrank.errors import DataFormatError
from mmrank.rerank.base import Outcome, Reranker
from mmrank.types import Hit, Query

M_DEFAULT, K_DEFAULT, BETA_DEFAULT = 400, 9, 0.15


def refine_topm(q: torch.Tensor, xt: torch.Tensor, *, K: int = K_DEFAULT, beta: float = BETA_DEFAULT) -> torch.Tensor:
    """Final SuperGlobal scores for queries ``q (B, d)`` and their top-M descriptors ``xt (B, M, d)``.

    Returns ``(B, M)`` scores aligned with ``xt``. ``K + 1`` is capped at ``M``.
    """
    m = xt.shape[1]
    k1 = min(K + 1, m)
    sim = torch.bmm(xt, xt.transpose(1, 2))  # (B, M, M)
    val, nbr = sim.topk(k1, dim=-1)  # (B, M, K+1), nearest first
    w = val * beta
    w[..., 0] = 1.0
    gathered = torch.gather(  # (B, M, K+1, d)
        xt.unsqueeze(1).expand(-1, m, -1, -1), 2, nbr.unsqueeze(-1).expand(-1, -1, -1, xt.shape[-1])
    )
    x_ref = (gathered * w.unsqueeze(-1)).sum(2) / w.sum(-1, keepdim=True)  # (B, M, d)
    s1 = torch.einsum("bd,bmd->bm", q, x_ref)
    top = s1.topk(k1, dim=-1).indices  # (B, K+1)
    q_ref = torch.gather(x_ref, 1, top.unsqueeze(-1).expand(-1, -1, x_ref.shape[-1])).amax(1)  # (B, d)
    s2 = torch.einsum("bd,bmd->bm", q_ref, x_ref)
    return (s1 + s2) / 2.0


def refine_rerank(
    queries: np.ndarray | torch.Tensor,
    database: np.ndarray | torch.Tensor,
    *,
    M: int = M_DEFAULT,
    K: int = K_DEFAULT,
    beta: float = BETA_DEFAULT,
    exclude: Sequence[int] | np.ndarray | None = None,
    device: str | torch.device | None = None,
    query_block: int = 64,
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
        for s in range(0, q.shape[0], query_block):
            qb = q[s : s + query_block]
            sim = qb @ x.T
            if exclude is not None:
                ex = torch.as_tensor(np.asarray(exclude[s : s + query_block]), dtype=torch.long, device=dev)
                sim[torch.arange(len(qb), device=dev), ex] = -torch.inf
            first_scores, ranks = sim.sort(dim=1, descending=True)
            ranks, first_scores = ranks[:, :n_cand], first_scores[:, :n_cand]
            top = ranks[:, :m]
            final = refine_topm(qb, x[top], K=K, beta=beta)
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
