"""BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009) via bm25s
(Lu, arXiv 2407.03618). Defaults k1=0.9, b=0.4 (the Anserini/Pyserini MS MARCO setting), Lucene IDF,
English Snowball stemming and English stopwords.

Only documents that match at least one query term are returned: bm25s fills its top-``k`` with zero-score
documents when fewer match, and those are dropped (a query matching nothing gets an empty ranking and the fallback
note ``"no query term matched; empty ranking"``). A corpus in which no document has an indexable term (all empty
or stopwords only) cannot be indexed and raises :class:`~mmrank.errors.DataFormatError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrank.errors import DataFormatError
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Hit, Query, Ranking, Run


class BM25Retriever(Retriever):
    """Sparse lexical retrieval over item text (title + text)."""

    name = "bm25"

    def __init__(
        self,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        stemmer: str | None = "english",
        stopwords: str | None = "en",
        n_threads: int = 1,
    ) -> None:
        super().__init__()
        if not (k1 >= 0 and 0 <= b <= 1):  # also refuses NaN
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b, self.method = k1, b, method
        self.stemmer_lang, self.stopwords, self.n_threads = stemmer, stopwords, n_threads
        self._bm25: Any = None
        self._ids: list[str] = []

    def _stemmer(self):  # type: ignore[no-untyped-def]
        if self.stemmer_lang is None:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.stemmer_lang)

    def _tokenize(self, texts: list[str]):  # type: ignore[no-untyped-def]
        import bm25s

        return bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self._stemmer(), show_progress=False)

    def index(self, corpus: Corpus) -> BM25Retriever:
        import bm25s

        if len(corpus) == 0:
            raise DataFormatError("cannot index an empty corpus")
        self.corpus = corpus
        self._ids = corpus.ids
        texts = [corpus[i].full_text for i in self._ids]
        tokens = self._tokenize(texts)
        if not any(len(doc) for doc in tokens.ids):
            raise DataFormatError(
                f"corpus {corpus.name!r}: none of its {len(texts)} documents has an indexable term "
                "(all empty or stopwords only); BM25 has nothing to index"
            )
        self._bm25 = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._bm25.index(tokens, show_progress=False)
        return self

    def retrieve(self, queries: Sequence[Query], k: int = 100) -> Run:
        corpus = self._require_index()
        for q in queries:
            if not q.text or not q.text.strip():
                raise DataFormatError(f"BM25 needs query text; query {q.id!r} has none")
        k = min(k, len(self._ids))
        tokens = self._tokenize([q.text or "" for q in queries])
        assert self._bm25 is not None
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=self.n_threads)
        out = []
        for qi, q in enumerate(queries):
            hits = []
            for d, s in zip(docs[qi], scores[qi], strict=True):
                if not s > 0:  # zero-score padding (no query term in the document), or NaN
                    continue
                iid = self._ids[int(d)]
                hits.append(Hit(iid, float(s), corpus[iid]))
            fb = [] if hits else ["no query term matched; empty ranking"]
            out.append(Ranking(q.id, hits, stage=self.name, query=q, fallbacks=fb))
        return Run(out, name=self.name)
