"""The reranker contract on a pure-Python scorer (the contract is what is under test here)."""

from __future__ import annotations

import numpy as np
import pytest

from mmrank.errors import DataFormatError
from mmrank.fusion import interpolate
from mmrank.rerank.base import ScoringReranker, length_sorted_batches
from mmrank.types import Hit, Item, Query, Ranking, Run


class WordOverlap(ScoringReranker):
    name = "overlap"

    def score_pairs(self, pairs):
        s = [len(set((q.text or "").split()) & set((it.text or "").split())) for q, it in pairs]
        return np.asarray(s, float), 1


def _run():
    items = [Item(f"d{i}", text=t) for i, t in enumerate(["x", "red car", "blue car", "red red car fast", "car"])]
    q = Query("q", text="red car fast")
    return q, Run([Ranking("q", [Hit(it.id, 10.0 - i, it) for i, it in enumerate(items)], query=q)])


def test_rerank_top_k_keeps_tail_below():
    q, run = _run()
    out = WordOverlap().rerank([q], run, top_k=4)["q"]
    assert out.ids == ["d3", "d1", "d2", "d0", "d4"]
    assert out.scores[:4] == [3.0, 2.0, 1.0, 0.0]
    assert out.scores[4] < out.scores[3]  # the tail stays below the reranked head
    assert out.stage == "overlap" and out.model_calls == 1


def test_fusion_with_first_stage():
    q, run = _run()
    out = WordOverlap(fusion="minmax", fusion_weight=0.5).rerank([q], run)["q"]
    fused = interpolate([0, 2, 1, 3, 1], [10, 9, 8, 7, 6], 0.5, "minmax")
    assert out.ids[0] == f"d{int(np.argmax(fused))}"
    assert sorted(out.scores, reverse=True) == pytest.approx(sorted(fused, reverse=True))


def test_queries_from_run_and_missing_items():
    _, run = _run()
    assert WordOverlap().rerank(None, run)["q"].ids[0] == "d3"
    bare = Run([Ranking("q", [Hit("d1", 1.0)], query=Query("q", text="x"))])
    with pytest.raises(DataFormatError, match="attach"):
        WordOverlap().rerank(None, bare)
    with pytest.raises(DataFormatError, match="no such query"):
        WordOverlap().rerank([Query("other", text="x")], run)


def test_rank_convenience():
    r = WordOverlap().rank("red car", ["blue", "red car", "car"])
    assert r.ids == ["1", "2", "0"]


def test_length_sorted_batches():
    assert length_sorted_batches([3, 10, 1, 7], 2) == [[1, 3], [0, 2]]


def test_split_calls_adds_up():
    from mmrank.rerank.base import split_calls

    assert split_calls(2, [10, 10, 10]) == [1, 1, 0]
    assert sum(split_calls(7, [3, 5, 1, 9])) == 7
    assert split_calls(0, [0]) == [0]
