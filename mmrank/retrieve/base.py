"""Retriever contract: ``index(corpus)`` once, then ``retrieve(queries, k) -> Run`` batched over queries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from mmrank.types import Corpus, Query, Run


class Retriever(ABC):
    name: str = "retriever"

    def __init__(self) -> None:
        self.corpus: Corpus | None = None

    @abstractmethod
    def index(self, corpus: Corpus) -> Retriever:
        """Index the corpus; returns ``self``."""

    @abstractmethod
    def retrieve(self, queries: Sequence[Query], k: int = 100) -> Run:
        """Top-``k`` items per query, hits carrying their items."""

    def _require_index(self) -> Corpus:
        if self.corpus is None:
            raise RuntimeError(f"{self.name}: call index(corpus) before retrieve()")
        return self.corpus
