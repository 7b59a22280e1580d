"""Reranker contract.

``reranker.rerank(queries, candidates, top_k) -> Run``: every query's top-``top_k`` candidates are
reordered, the rest keep their first-stage order below them. Work is batched across queries.
Each output :class:`Ranking` records the stage name, the number of model calls and the fallbacks
that fired (e.g. ``"parse failed, kept input order"``).

Subclasses implement one method, :meth:`Reranker._rerank_lists`, which sees all queries at once.
Score-producing methods subclass :class:`ScoringReranker` and implement :meth:`score_pairs`;
they get optional fusion with the first-stage score for free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError
from mmrank.fusion import Norm, interpolate
from mmrank.types import Hit, Item, Query, Ranking, Run


@dataclass(slots=True)
class Outcome:
    """What a reranker decided for one query's list.

    ``order`` is a permutation of ``range(len(list))`` (best first). ``scores`` (aligned with the
    *input* list) are given by score-producing methods; listwise methods may leave them ``None``.
    ``meta`` (e.g. a generative method's reasoning text) lands in ``Ranking.meta[reranker.name]``.
    """

    order: list[int]
    scores: list[float] | None = None
    model_calls: int = 0
    fallbacks: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


QueriesLike = Mapping[str, Query] | Iterable[Query] | None


def _query_map(queries: QueriesLike, candidates: Run) -> dict[str, Query]:
    if queries is None:
        out = {}
        for qid, r in candidates.items():
            if r.query is None:
                raise DataFormatError(f"no query given for {qid!r} and the run carries none")
            out[qid] = r.query
        return out
    if isinstance(queries, Mapping):
        return {str(k): v for k, v in queries.items()}
    return {q.id: q for q in queries}


class Reranker(ABC):
    """Base class of every reranker (text, image or page; pointwise, listwise, ...)."""

    name: str = "reranker"
    modalities: frozenset[str] = frozenset({"text"})

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def rerank(self, queries: QueriesLike, candidates: Run, top_k: int | None = None) -> Run:
        """Rerank the top ``top_k`` (default: all) candidates of every query in ``candidates``.

        ``queries`` maps ids to :class:`Query` (or is a sequence of them, or ``None`` when the run's
        rankings carry their queries). Hits must carry their items (see :meth:`Run.attach`).
        """
        qmap = _query_map(queries, candidates)
        jobs: list[tuple[Query, list[Hit]]] = []
        tails: list[list[Hit]] = []
        rankings = list(candidates.values())
        for r in rankings:
            if r.query_id not in qmap:
                raise DataFormatError(f"candidates hold query {r.query_id!r} but no such query was given")
            head = r.hits[:top_k] if top_k is not None else list(r.hits)
            for h in head:
                if h.item is None:
                    raise DataFormatError(
                        f"query {r.query_id!r}: hit {h.id!r} has no item; call run.attach(corpus) first"
                    )
            jobs.append((qmap[r.query_id], head))
            tails.append(r.hits[len(head) :])
        outcomes = self._rerank_lists(jobs) if jobs else []
        out = []
        for r, (q, head), tail, oc in zip(rankings, jobs, tails, outcomes, strict=True):
            out.append(self._assemble(r, q, head, tail, oc))
        return Run(out, name=f"{candidates.name}>{self.name}")

    def rank(self, query: str | Query, docs: Sequence[str | Item], top_k: int | None = None) -> Ranking:
        """Convenience for one query and a list of texts or items (ids default to positions)."""
        q = query if isinstance(query, Query) else Query("q", text=query)
        items = [d if isinstance(d, Item) else Item(str(i), text=d) for i, d in enumerate(docs)]
        n = len(items)
        run = Run([Ranking(q.id, [Hit(it.id, float(n - i), it) for i, it in enumerate(items)], query=q)])
        return self.rerank(None, run, top_k=top_k)[q.id]

    @abstractmethod
    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        """Decide an :class:`Outcome` for every ``(query, hits)`` list; batch across lists freely."""

    def _assemble(self, r: Ranking, q: Query, head: list[Hit], tail: list[Hit], oc: Outcome) -> Ranking:
        n = len(head)
        if sorted(oc.order) != list(range(n)):
            raise AssertionError(f"{self.name}: outcome order is not a permutation of {n} items")
        if oc.scores is not None:
            new_scores = [float(oc.scores[i]) for i in oc.order]
        else:  # rank-derived scores: n, n-1, ..., 1
            new_scores = [float(n - rank) for rank in range(n)]
        hits = [Hit(head[i].id, s, head[i].item) for i, s in zip(oc.order, new_scores, strict=True)]
        floor = min(new_scores) if new_scores else 0.0
        hits += [Hit(h.id, floor - 1.0 - j, h.item) for j, h in enumerate(tail)]
        return Ranking(
            r.query_id,
            hits,
            stage=self.name,
            model_calls=oc.model_calls,
            fallbacks=list(r.fallbacks) + oc.fallbacks,
            query=q,
            meta={**r.meta, self.name: oc.meta} if oc.meta else dict(r.meta),
        )


class ScoringReranker(Reranker):
    """A reranker that scores each (query, item) pair independently of the others.

    ``fusion`` (``"zscore"`` / ``"minmax"``) interpolates the reranker score with the first-stage
    score: ``fusion_weight * norm(rerank) + (1 - fusion_weight) * norm(first_stage)``.
    """

    def __init__(
        self,
        *,
        batch_size: int = 16,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        self.batch_size = batch_size
        self.fusion = fusion
        self.fusion_weight = fusion_weight

    @abstractmethod
    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        """Score all pairs (from all queries, in any order); return ``(scores, model_calls)``."""

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        pairs = [(q, h.item) for q, hits in jobs for h in hits]
        scores, calls = self.score_pairs(pairs)  # type: ignore[arg-type]
        scores = np.asarray(scores, dtype=np.float64)
        shares = split_calls(calls, [len(h) for _, h in jobs])
        out, at = [], 0
        for (_q, hits), share in zip(jobs, shares, strict=True):
            s = scores[at : at + len(hits)]
            at += len(hits)
            if self.fusion is not None and len(hits) > 0:
                s = interpolate(s, [h.score for h in hits], self.fusion_weight, self.fusion)
            order = sorted(range(len(hits)), key=lambda i: -s[i])
            out.append(Outcome(order, s.tolist(), model_calls=share))
        return out


def split_calls(calls: int, sizes: Sequence[int]) -> list[int]:
    """Attribute ``calls`` batched model calls to lists in proportion to their sizes (largest remainder),
    so that the per-query counts add up to the true total."""
    total = sum(sizes)
    if total == 0:
        return [0] * len(sizes)
    raw = [calls * n / total for n in sizes]
    base = [int(x) for x in raw]
    left = calls - sum(base)
    for i in sorted(range(len(raw)), key=lambda i: -(raw[i] - base[i]))[:left]:
        base[i] += 1
    return base


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first) to cut padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def describe(obj: Any) -> str:
    return getattr(obj, "name", type(obj).__name__)
