from __future__ import annotations

import numpy as np

from mmrank.io import load_corpus, load_queries
from mmrank.rerank.biencoder import BiEncoderReranker
from mmrank.types import Hit, Ranking, Run


def test_biencoder_scores_are_cosines(sample_dir, minilm):
    corpus, queries = load_corpus(sample_dir), load_queries(sample_dir)
    items = list(corpus.values())[:8]
    run = Run([Ranking(q.id, [Hit(it.id, 0.0, it) for it in items], query=q) for q in queries[:2]])
    out = BiEncoderReranker(encoder=minilm).rerank(queries[:2], run)
    for q in queries[:2]:
        qv = minilm.encode_queries([q])[0]
        ref = {it.id: float(np.dot(qv, v)) for it, v in zip(items, minilm.encode_items(items), strict=True)}
        got = {h.id: h.score for h in out[q.id].hits}
        assert max(abs(got[k] - ref[k]) for k in ref) < 1e-5
        assert out[q.id].ids == sorted(ref, key=lambda k: -ref[k])
