"""Hybrid retrieval: fuse several retrievers with reciprocal rank fusion (Cormack et al., SIGIR 2009)
or a weighted sum of min-max normalised scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from mmrank import registry
from mmrank.fusion import fuse_runs
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Query, Run


class HybridRetriever(Retriever):
    """E.g. ``HybridRetriever(["bm25", "dense"], method="rrf")``; each retriever fetches ``depth`` items."""

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever | str] = ("bm25", "dense"),
        *,
        method: Literal["rrf", "weighted"] = "rrf",
        weights: Sequence[float] | None = None,
        rrf_k: int = 60,
        depth: int = 1000,
    ) -> None:
        super().__init__()
        if method not in ("rrf", "weighted"):
            raise ValueError(f"method must be 'rrf' or 'weighted', got {method!r}")
        if weights is not None and len(weights) != len(retrievers):
            raise ValueError(f"{len(weights)} weights for {len(retrievers)} retrievers; give one weight per retriever")
        if rrf_k < 0 or depth < 1:
            raise ValueError(f"rrf_k must be >= 0 and depth >= 1, got rrf_k={rrf_k}, depth={depth}")
        self.retrievers = [registry.retriever(r) if isinstance(r, str) else r for r in retrievers]
        self.method, self.weights, self.rrf_k, self.depth = method, weights, rrf_k, depth

    def index(self, corpus: Corpus) -> HybridRetriever:
        self.corpus = corpus
        for r in self.retrievers:
            r.index(corpus)
        return self

    def retrieve(self, queries: Sequence[Query], k: int = 100) -> Run:
        self._require_index()
        runs = [r.retrieve(queries, k=max(k, self.depth)) for r in self.retrievers]
        fused = fuse_runs(runs, self.method, weights=self.weights, k=self.rrf_k, name=self.name)
        return fused.top(k)
