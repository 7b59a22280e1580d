"""Rank fusion of several rerankers over the same candidate lists.

Each member reranks every list; their rankings are fused per query with reciprocal rank fusion (Cormack et al.,
SIGIR 2009, ``sum 1/(k + rank)``, k=60) or a weighted sum of normalised scores (:mod:`mmrank.fusion`). Model calls
add up and every member's fallbacks are kept, prefixed by its name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mmrank.fusion import Norm, rrf, weighted
from mmrank.rerank.base import Outcome, Reranker
from mmrank.types import Hit, Query, Ranking


class RankFusionReranker(Reranker):
    """Fuse ``rerankers`` (instances, or ``(registry name, kwargs)`` pairs) by ``method`` ``"rrf"``/``"weighted"``."""

    name = "fusion"

    def __init__(
        self,
        rerankers: Sequence[Reranker | tuple[str, Mapping[str, Any]]],
        *,
        method: Literal["rrf", "weighted"] = "rrf",
        weights: Sequence[float] | None = None,
        k: int = 60,
        how: Norm = "minmax",
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        from mmrank.registry import reranker

        if not rerankers:
            raise ValueError("rank fusion needs at least one reranker")
        if method not in ("rrf", "weighted"):
            raise ValueError(f"method must be 'rrf' or 'weighted', got {method!r}")
        self.members: list[Reranker] = [
            r if isinstance(r, Reranker) else reranker(r[0], **dict(r[1])) for r in rerankers
        ]
        if weights is not None and len(weights) != len(self.members):
            raise ValueError("one weight per reranker is needed")
        self.method, self.weights, self.k, self.how = method, weights, k, how
        self.name = "fusion(" + "+".join(m.name for m in self.members) + ")"

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        per_member = [m.decide(jobs) for m in self.members]
        out = []
        for j, (q, hits) in enumerate(jobs):
            rankings, calls, fbs = [], 0, []
            for m, outcomes in zip(self.members, per_member, strict=True):
                oc = outcomes[j]
                assert oc.order is not None
                n = len(oc.order)
                scores = oc.scores if oc.scores is not None else [float(n - r) for r in range(n)]
                ranked = [
                    Hit(str(i), float(scores[i] if oc.scores is not None else scores[r]))
                    for r, i in enumerate(oc.order)
                ]
                rankings.append(Ranking(q.id, ranked))
                calls += oc.model_calls
                fbs += [f"{m.name}: {f}" if not f.startswith(m.name) else f for f in oc.fallbacks]
            fused = (
                rrf(rankings, k=self.k)
                if self.method == "rrf"
                else weighted(rankings, self.weights or [1.0 / len(rankings)] * len(rankings), how=self.how)
            )
            by_pos = {int(h.id): h.score for h in fused}
            # fused scores only: the base class orders them and breaks ties by first-stage rank
            out.append(Outcome(None, [by_pos[i] for i in range(len(hits))], calls, fbs))
        return out
