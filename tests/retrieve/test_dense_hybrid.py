from __future__ import annotations

import numpy as np
import pytest

import mmrank
from mmrank.io import load_corpus, load_qrels, load_queries
from mmrank.retrieve.dense import DenseRetriever
from mmrank.retrieve.hybrid import HybridRetriever


@pytest.fixture(scope="module")
def sample(sample_dir):
    return load_corpus(sample_dir), load_queries(sample_dir), load_qrels(sample_dir)


def test_dense_with_real_minilm(sample, minilm):
    corpus, queries, qrels = sample
    dense = DenseRetriever(minilm).index(corpus)
    run = dense.retrieve(queries, k=5)
    # independent computation: cosine by numpy over all items
    q = minilm.encode_queries(queries[:1])[0]
    items = list(corpus.values())
    sims = minilm.encode_items(items) @ q
    assert run[queries[0].id].ids[0] == items[int(np.argmax(sims))].id
    assert mmrank.evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] > 0.8


def test_dense_cache_hits(sample, minilm, tmp_path):
    corpus, queries, _ = sample
    a = DenseRetriever(minilm, cache_dir=tmp_path / "cache").index(corpus).retrieve(queries, k=3)
    calls = []
    real = minilm.encode_items

    def counting(items, **kw):
        calls.append(len(items))
        return real(items, **kw)

    minilm.encode_items = counting
    try:
        b = (
            DenseRetriever(minilm, cache_dir=tmp_path / "cache", index="faiss-flat")
            .index(corpus)
            .retrieve(queries, k=3)
        )
    finally:
        minilm.encode_items = real
    assert calls == []  # everything came from the cache
    assert [r.ids for r in a.values()] == [r.ids for r in b.values()]


def test_hybrid_rrf(sample, minilm):
    corpus, queries, qrels = sample
    hy = HybridRetriever([mmrank.retriever("bm25"), DenseRetriever(minilm)], depth=30).index(corpus)
    run = hy.retrieve(queries, k=10)
    assert all(len(r) == 10 for r in run.values())
    assert mmrank.evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] > 0.8
