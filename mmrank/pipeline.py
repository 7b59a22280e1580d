"""A pipeline is a retriever followed by any number of rerankers; a :class:`Run` flows between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmrank import registry
from mmrank.rerank.base import Reranker
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Qrels, Query, Run


@dataclass
class Stage:
    """A reranker applied to the top ``top_k`` of the previous stage."""

    reranker: Reranker
    top_k: int | None = None


@dataclass
class Pipeline:
    """``Pipeline("bm25", [("bi-encoder", 100)]).index(corpus).run(queries)``.

    ``retriever`` and rerankers may be registry names or objects.
    """

    retriever: Retriever | str
    rerankers: Sequence[Reranker | str | tuple[Reranker | str, int | None]] = ()
    k: int = 100
    stages: list[Stage] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.retriever, str):
            self.retriever = registry.retriever(self.retriever)
        self.stages = []
        for r in self.rerankers:
            obj, top_k = r if isinstance(r, tuple) else (r, None)
            self.stages.append(Stage(registry.reranker(obj) if isinstance(obj, str) else obj, top_k))

    def index(self, corpus: Corpus) -> Pipeline:
        assert isinstance(self.retriever, Retriever)
        self.retriever.index(corpus)
        return self

    def run(self, queries: Sequence[Query], *, return_all: bool = False) -> Run | list[Run]:
        """The final run, or every stage's run with ``return_all``."""
        assert isinstance(self.retriever, Retriever)
        runs = [self.retriever.retrieve(queries, k=self.k)]
        for st in self.stages:
            runs.append(st.reranker.rerank(queries, runs[-1], top_k=st.top_k))
        return runs if return_all else runs[-1]

    def evaluate(self, queries: Sequence[Query], qrels: Qrels, metrics: Sequence[str] = ("ndcg@10",), **kw: Any):
        """Metrics of every stage: ``{stage name: {metric: value}}``."""
        from mmrank.eval import evaluate

        runs = self.run(queries, return_all=True)
        assert isinstance(runs, list)
        return {run.name: evaluate(run, qrels, metrics, **kw) for run in runs}
