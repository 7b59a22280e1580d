"""Reranker contract.

``reranker.rerank(queries, candidates, top_k) -> Run``: every query's top-``top_k`` candidates are
reordered, the rest keep their first-stage order below them. Work is batched across queries.
Each output :class:`Ranking` records the stage name, the number of model calls and the fallbacks
that fired (e.g. ``"parse failed, kept input order"``).

Subclasses implement one method, :meth:`Reranker._rerank_lists`, which sees all queries at once and returns an
:class:`Outcome` per list: scores (aligned with the input list), an order, or both. Score-producing methods
subclass :class:`ScoringReranker` and implement :meth:`ScoringReranker.score_pairs`.

Decided here, once, for every reranker:

* **Fusion** with the first-stage score (``fusion="zscore"|"minmax"|"none"``, ``fusion_weight``):
  ``w * norm(rerank) + (1 - w) * norm(first_stage)`` for outcomes that give scores and no order. A list whose
  first-stage scores are not all finite is not fused (recorded).
* **Order**: by decreasing score; **ties broken by first-stage rank** (the earlier candidate first). NaN scores rank
  last (recorded). An outcome that gives its own order (listwise, setwise, sliding windows) keeps it.
* **Written scores** are strictly decreasing along the ranking, with gaps that survive evaluation and writing:
  pytrec_eval (and so ``ir_measures``) compares scores as float32, ties broken by docid, so the score of each hit
  is kept when its float32 value is below its predecessor's, and otherwise replaced by the next float32 value below
  the predecessor (exactly representable, so a full-precision TREC writer round-trips it). Scores are clipped to
  +-1e30 and never land strictly between -1e-30 and 0 after a tie (no denormal gaps). Outcomes without scores get
  ``n, n-1, ..., 1``; the candidates below ``top_k`` continue below the reranked head in first-stage order.
  See :func:`strictly_decreasing`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError
from mmrank.fusion import Norm, interpolate
from mmrank.types import Hit, Item, Query, Ranking, Run

SCORE_LIMIT = 1e30
_F32_TINY = float(np.float32(1e-30))


@dataclass(slots=True)
class Outcome:
    """What a reranker decided for one query's list.

    ``scores`` (aligned with the *input* list) are given by score-producing methods; ``order`` (a permutation of
    ``range(len(list))``, best first) by methods that decide an order themselves. With scores and no order the base
    class fuses (when asked) and orders them; with both, the order is kept and the scores are written along it.
    ``meta`` (e.g. a generative method's reasoning text) lands in ``Ranking.meta[reranker.name]``.
    """

    order: list[int] | None = None
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


def _below(x: float) -> float:
    """The largest float32 value strictly below ``float32(x)``, skipping the band (-1e-30, 0) of tiny gaps."""
    f = np.float32(x)
    if -_F32_TINY < f <= _F32_TINY:
        return -_F32_TINY
    return float(np.nextafter(f, np.float32(-np.inf)))


def strictly_decreasing(values: Sequence[float]) -> list[float]:
    """``values`` (already in ranking order) made strictly decreasing in float32, changing as few as possible.

    ``out[0]`` is ``values[0]`` clipped to +-:data:`SCORE_LIMIT` (NaN becomes ``-SCORE_LIMIT``); each later value is
    kept when ``float32(v) < float32(out[i-1])`` and otherwise replaced by the next float32 below ``out[i-1]``. Since
    rounding to float32 is monotone, the result is strictly decreasing in float64 as well.
    """
    out: list[float] = []
    for v in values:
        v = float(v)
        if math.isnan(v):
            v = -SCORE_LIMIT
        v = min(max(v, -SCORE_LIMIT), SCORE_LIMIT)
        if out and not np.float32(v) < np.float32(out[-1]):
            v = _below(out[-1])
        out.append(v)
    return out


def order_by_scores(scores: Sequence[float]) -> list[int]:
    """Positions by decreasing score, ties by position (first-stage rank); NaN last."""
    key = [-math.inf if math.isnan(float(s)) else float(s) for s in scores]
    return sorted(range(len(key)), key=lambda i: (-key[i], i))


class Reranker(ABC):
    """Base class of every reranker (text, image or page; pointwise, listwise, ...).

    ``fusion`` / ``fusion_weight``: see the module docstring (``None``: the reranker's scores alone).
    """

    name: str = "reranker"
    modalities: frozenset[str] = frozenset({"text"})
    supports_fusion: bool = True  # False for methods that decide an order without scores (listwise, setwise)

    def __init__(self, *, seed: int = 0, fusion: Norm | None = None, fusion_weight: float = 0.8) -> None:
        if fusion is not None and not self.supports_fusion:
            raise ValueError(f"{self.name} decides an order without scores: it cannot be fused (fusion={fusion!r})")
        if fusion is not None and fusion not in ("zscore", "minmax", "none"):
            raise ValueError(f"fusion must be None, 'zscore', 'minmax' or 'none', got {fusion!r}")
        if not 0.0 <= fusion_weight <= 1.0:
            raise ValueError(f"fusion_weight must be in [0, 1], got {fusion_weight}")
        self.seed = seed
        self.fusion = fusion
        self.fusion_weight = fusion_weight

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
        outcomes = self.decide(jobs) if jobs else []
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

    def fuse(self, scores: Sequence[float] | np.ndarray, hits: Sequence[Hit]) -> tuple[np.ndarray, list[str]]:
        """``scores`` fused with the hits' first-stage scores (unchanged without ``fusion``), and notes."""
        s = np.asarray(scores, dtype=np.float64)
        if self.fusion is None or len(hits) == 0:
            return s, []
        first = np.asarray([h.score for h in hits], dtype=np.float64)
        if not np.isfinite(first).all():
            return s, [f"{self.name}: first-stage scores not finite, fusion skipped"]
        return interpolate(s, first, self.fusion_weight, self.fusion), []

    def decide(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        """:meth:`_rerank_lists`, then fusion and the one tie-break: every outcome comes back with an order."""
        outcomes = self._rerank_lists(jobs)
        if len(outcomes) != len(jobs):
            raise AssertionError(f"{self.name}: {len(outcomes)} outcomes for {len(jobs)} lists")
        for (_q, hits), oc in zip(jobs, outcomes, strict=True):
            n = len(hits)
            if oc.scores is not None and len(oc.scores) != n:
                raise AssertionError(f"{self.name}: {len(oc.scores)} scores for {n} candidates")
            if oc.order is None:
                if oc.scores is None:
                    raise AssertionError(f"{self.name}: an outcome needs an order or scores")
                s, notes = self.fuse(oc.scores, hits)
                oc.fallbacks += notes
                nan = int(np.isnan(s).sum())
                if nan:
                    oc.fallbacks.append(f"{self.name}: {nan} NaN score(s) ranked last")
                oc.scores = s.tolist()
                oc.order = order_by_scores(oc.scores)
            elif sorted(oc.order) != list(range(n)):
                raise AssertionError(f"{self.name}: outcome order is not a permutation of {n} items")
        return outcomes

    def _assemble(self, r: Ranking, q: Query, head: list[Hit], tail: list[Hit], oc: Outcome) -> Ranking:
        n = len(head)
        assert oc.order is not None
        if oc.scores is not None:
            values = [float(oc.scores[i]) for i in oc.order]
        else:  # rank-derived scores: n, n-1, ..., 1
            values = [float(n - rank) for rank in range(n)]
        floor = values[-1] if values else 0.0
        floor = floor if math.isfinite(floor) else -SCORE_LIMIT
        scores = strictly_decreasing(values + [floor - 1.0 - j for j in range(len(tail))])
        hits = [Hit(head[i].id, s, head[i].item) for i, s in zip(oc.order, scores, strict=False)]
        hits += [Hit(h.id, s, h.item) for h, s in zip(tail, scores[n:], strict=True)]
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
    """A reranker that scores each (query, item) pair independently of the others (fusion: see :class:`Reranker`)."""

    def __init__(
        self,
        *,
        batch_size: int = 16,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed, fusion=fusion, fusion_weight=fusion_weight)
        self.batch_size = batch_size

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
            out.append(Outcome(None, scores[at : at + len(hits)].tolist(), model_calls=share))
            at += len(hits)
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
