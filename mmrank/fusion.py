"""Score normalisation and fusion, shared by hybrid retrieval and rerankers.

* Reciprocal rank fusion: Cormack, Clarke & Buettcher, SIGIR 2009, ``sum 1/(k + rank)``, k=60.
* Score interpolation ``w * norm(a) + (1 - w) * norm(b)`` with z-score or min-max normalisation,
  as used by ERank (z-score, 0.8 rerank / 0.2 BM25) and GroupRank (0.6 / 0.4).

Rules: a non-finite score (NaN, -inf: a failed or missing score) is given the *floor* of its list -- the lowest
normalised value of its finite scores -- and +inf the ceiling, so one bad score never turns a whole list into NaN
nor sorts first. In a weighted fusion of rankings, a document missing from one ranking gets that ranking's floor
(its lowest normalised score), not its mean: absence is evidence of low relevance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from mmrank.types import Hit, Ranking, Run

Norm = Literal["zscore", "minmax", "none"]


def normalise(scores: Sequence[float] | np.ndarray, how: Norm = "zscore") -> np.ndarray:
    """Normalise one query's scores. Constant lists map to zeros. Statistics use the finite scores only; NaN and
    -inf get the floor (lowest normalised finite value), +inf the ceiling (all zeros when none is finite)."""
    s = np.asarray(scores, dtype=np.float64)
    if how not in ("zscore", "minmax", "none"):
        raise ValueError(f"unknown normalisation {how!r}; use 'zscore', 'minmax' or 'none'")
    if s.size == 0:
        return s
    finite = np.isfinite(s)
    out = np.zeros_like(s)
    f = s[finite]
    if how == "none":
        out[finite] = f
    elif f.size:
        scale = np.abs(f).max()
        if scale > 1e150:  # both normalisations are scale-free; rescaling keeps huge scores from overflowing
            f = f / scale
        if how == "zscore":
            sd = f.std()
            out[finite] = (f - f.mean()) / sd if sd > 0 else 0.0
        else:
            rng = f.max() - f.min()
            out[finite] = (f - f.min()) / rng if rng > 0 else 0.0
    if not finite.all():
        lo, hi = (out[finite].min(), out[finite].max()) if f.size else (0.0, 0.0)
        out[~finite] = lo
        out[np.isposinf(s)] = hi
    return out


def interpolate(
    primary: Sequence[float] | np.ndarray,
    secondary: Sequence[float] | np.ndarray,
    weight: float,
    how: Norm = "zscore",
) -> np.ndarray:
    """``weight * norm(primary) + (1 - weight) * norm(secondary)`` for aligned score lists."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    return weight * normalise(primary, how) + (1.0 - weight) * normalise(secondary, how)


def rrf(rankings: Sequence[Ranking], k: int = 60, depth: int | None = None) -> list[Hit]:
    """Reciprocal rank fusion of several rankings of one query (ranks are 1-based)."""
    scores: dict[str, float] = {}
    items: dict[str, Hit] = {}
    for r in rankings:
        for rank, h in enumerate(r.hits[:depth], start=1):
            scores[h.id] = scores.get(h.id, 0.0) + 1.0 / (k + rank)
            items.setdefault(h.id, h)
    order = sorted(scores, key=lambda d: -scores[d])
    return [Hit(d, scores[d], items[d].item) for d in order]


def weighted(rankings: Sequence[Ranking], weights: Sequence[float], how: Norm = "minmax") -> list[Hit]:
    """Weighted sum of normalised scores; a document absent from a ranking gets that ranking's floor (its lowest
    normalised score: 0 for min-max, the lowest z-score for z-score)."""
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is needed")
    norms = [dict(zip(r.ids, normalise(r.scores, how), strict=True)) for r in rankings]
    floors = [min(n.values()) if n else 0.0 for n in norms]
    items: dict[str, Hit] = {}
    for r in rankings:
        for h in r.hits:
            items.setdefault(h.id, h)
    scores = {d: sum(w * float(n.get(d, fl)) for n, w, fl in zip(norms, weights, floors, strict=True)) for d in items}
    order = sorted(scores, key=lambda d: -scores[d])
    return [Hit(d, scores[d], items[d].item) for d in order]


def fuse_runs(
    runs: Sequence[Run],
    method: Literal["rrf", "weighted"] = "rrf",
    *,
    weights: Sequence[float] | None = None,
    k: int = 60,
    how: Norm = "minmax",
    name: str = "fused",
) -> Run:
    """Fuse several runs query by query (rank fusion of retrievers or rerankers)."""
    if not runs:
        raise ValueError("nothing to fuse")
    if weights is not None and len(weights) != len(runs):
        raise ValueError(f"{len(weights)} weights for {len(runs)} runs; give one weight per run")
    qids = list(dict.fromkeys(q for run in runs for q in run))
    out = []
    for q in qids:
        rs = [run[q] for run in runs if q in run]
        if method == "rrf":
            hits = rrf(rs, k=k)
        else:
            ws = list(weights) if weights is not None else [1.0 / len(runs)] * len(runs)
            ws = [w for run, w in zip(runs, ws, strict=True) if q in run]
            hits = weighted(rs, ws, how=how)
        out.append(Ranking(q, hits, stage=f"fusion:{method}", query=rs[0].query))
    return Run(out, name=name)
