"""BM25 against a naive Lucene-BM25 written out from the formula (Kamphuis et al., ECIR 2020, "Which BM25
do you mean?": Lucene variant, idf = log(1 + (N - df + .5) / (df + .5)), no (k1 + 1) in the numerator)."""

from __future__ import annotations

import math

import pytest

import mmrank
from mmrank.errors import DataFormatError
from mmrank.types import Corpus, Item, Query

DOCS = {
    "a": "the cat sat on the mat",
    "b": "the dog chased the cat around the yard",
    "c": "a bird flew over the yard",
    "d": "cats and dogs living together",
}


def naive_bm25(query: str, docs: dict[str, str], k1: float, b: float) -> dict[str, float]:
    # bm25s's default tokenizer keeps lower-cased words of 2+ characters
    toks = {d: [w for w in t.lower().split() if len(w) > 1] for d, t in docs.items()}
    n = len(docs)
    avgdl = sum(len(t) for t in toks.values()) / n
    out = {}
    for d, t in toks.items():
        s = 0.0
        for term in set(query.split()):
            df = sum(term in tt for tt in toks.values())
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))  # Lucene's IDF
            tf = t.count(term)
            s += idf * tf / (tf + k1 * (1 - b + b * len(t) / avgdl))  # Lucene drops the (k1 + 1) factor
        out[d] = s
    return out


def test_bm25_matches_formula():
    corpus = Corpus(Item(k, text=v) for k, v in DOCS.items())
    bm = mmrank.retriever("bm25", stemmer=None, stopwords=None, k1=1.2, b=0.75).index(corpus)
    queries = [Query("q1", text="cat yard"), Query("q2", text="bird")]
    run = bm.retrieve(queries, k=4)
    for q in queries:
        ref = naive_bm25(q.text, DOCS, 1.2, 0.75)
        got = {h.id: h.score for h in run[q.id].hits}
        for d, s in got.items():
            assert s == pytest.approx(ref[d], rel=1e-5)
        assert run[q.id].ids[0] == max(ref, key=ref.get)
    assert run["q1"].hits[0].item is corpus[run["q1"].ids[0]]


def test_bm25_stemming_matches_plural():
    corpus = Corpus(Item(k, text=v) for k, v in DOCS.items())
    run = mmrank.retriever("bm25").index(corpus).retrieve([Query("q", text="dogs")], k=2)
    assert set(run["q"].ids) == {"b", "d"}  # "dog" and "dogs" share the stem


def test_bm25_errors_and_no_match():
    bm = mmrank.retriever("bm25")
    with pytest.raises(RuntimeError, match="index"):
        bm.retrieve([Query("q", text="x")])
    with pytest.raises(DataFormatError):
        bm.index(Corpus())
    bm.index(Corpus(Item(k, text=v) for k, v in DOCS.items()))
    run = bm.retrieve([Query("q", text="zebra")], k=2)
    assert run["q"].fallbacks == ["no query term matched; empty ranking"] and run["q"].hits == []


def test_bm25_drops_zero_score_padding():
    """Issue 12 item 11: bm25s pads the top-k with zero-score documents; only matching documents are hits."""
    corpus = Corpus(Item(k, text=v) for k, v in DOCS.items())
    run = mmrank.retriever("bm25").index(corpus).retrieve([Query("q", text="cat")], k=len(DOCS))
    matching = {k for k, v in DOCS.items() if "cat" in v.lower()}
    assert set(run["q"].ids) == matching and all(h.score > 0 for h in run["q"])


@pytest.mark.parametrize("texts", [["", ""], ["the a an", "of the"], ["  ", "the of"]])
def test_bm25_corpus_without_any_term_is_a_data_error(texts):
    corpus = Corpus(Item(f"d{i}", text=t or None, title="the" if not t else None) for i, t in enumerate(texts))
    with pytest.raises(DataFormatError, match=r"none of its \d+ documents has an indexable term"):
        mmrank.retriever("bm25").index(corpus)
