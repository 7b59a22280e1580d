"""The reranker contract on a pure-Python scorer (the contract is what is under test here)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrank.errors import DataFormatError
from mmrank.fusion import interpolate
from mmrank.llm.batching import length_sorted_batches
from mmrank.rerank.base import ScoringReranker
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


# ---------------------------------------------------------------- one tie-break, scores that survive evaluation


class Fixed(ScoringReranker):
    """Returns given scores for the candidates (in first-stage order)."""

    name = "fixed"

    def __init__(self, scores, **kw):
        super().__init__(**kw)
        self.fixed = scores

    def score_pairs(self, pairs):
        return np.asarray(self.fixed[: len(pairs)], float), 1


TIES = [0.5, 0.3, 0.5, 0.5 + 1e-9, 0.5 - 1e-9, 0.3, 1e-12, 0.0, 0.0, -0.0, 1e6, 1e6 + 1e-4, -7.0, -7.0, 0.5]


def _positions_as_evaluated(run: Run) -> list[str]:
    """The order ir_measures (pytrec_eval) evaluates: for each doc, RR with only that doc relevant = 1/rank."""
    import ir_measures

    ranks = {}
    for h in run["q"].hits:
        rr = ir_measures.calc_aggregate([ir_measures.RR], {"q": {h.id: 1}}, run.as_dict())[ir_measures.RR]
        ranks[h.id] = round(1 / rr)
    return sorted(ranks, key=ranks.get)


def test_ties_and_near_ties_evaluate_in_the_run_order():
    items = [Item(f"d{i}", text="x") for i in range(len(TIES))]
    q = Query("q", text="x")
    run = Run([Ranking("q", [Hit(it.id, 100.0 - i, it) for i, it in enumerate(items)], query=q)])
    out = Fixed(TIES).rerank([q], run, top_k=12)
    ids = out["q"].ids
    # ties broken once, by first-stage rank; 1e-9 near-ties keep their order
    head = sorted(range(12), key=lambda i: (-TIES[i], i))
    assert ids == [f"d{i}" for i in head] + ["d12", "d13", "d14"]
    scores = out["q"].scores
    assert all(np.float32(a) > np.float32(b) for a, b in pairwise(scores))
    assert _positions_as_evaluated(out) == ids
    # a full-precision writer (repr) round-trips the scores exactly, so the written run evaluates the same way
    reread = Run([Ranking("q", [Hit(h.id, float(repr(h.score))) for h in out["q"].hits])])
    assert _positions_as_evaluated(reread) == ids
    # scores apart in float32 are written as computed; 1e6 and 1e6 + 1e-4 are one float32, so the second steps down
    assert scores[0] == 1e6 + 1e-4 and scores[1] == float(np.nextafter(np.float32(1e6), np.float32(-np.inf)))
    assert scores[ids.index("d1")] == 0.3 and scores[ids.index("d3")] == 0.5 + 1e-9


def test_nan_scores_rank_last_and_are_recorded():
    items = [Item(f"d{i}", text="x") for i in range(4)]
    q = Query("q", text="x")
    run = Run([Ranking("q", [Hit(it.id, 4.0 - i, it) for i, it in enumerate(items)], query=q)])
    out = Fixed([float("nan"), 0.2, float("nan"), 0.9]).rerank([q], run)["q"]
    assert out.ids == ["d3", "d1", "d0", "d2"]
    assert all(np.isfinite(out.scores)) and "fixed: 2 NaN score(s) ranked last" in out.fallbacks
    # fusion needs finite first-stage scores; otherwise it is skipped and recorded
    bad = Run([Ranking("q", [Hit(it.id, float("nan"), it) for it in items], query=q)])
    fused = Fixed([0.1, 0.4, 0.3, 0.2], fusion="zscore").rerank([q], bad)["q"]
    assert fused.ids == ["d1", "d2", "d3", "d0"]
    assert fused.fallbacks == ["fixed: first-stage scores not finite, fusion skipped"]


def test_fusion_is_validated_once():
    with pytest.raises(ValueError):
        Fixed([], fusion="l2")
    with pytest.raises(ValueError):
        Fixed([], fusion="zscore", fusion_weight=1.5)
    from mmrank.rerank.listwise import ListwiseReranker

    with pytest.raises(ValueError, match="cannot be fused"):
        ListwiseReranker(model="x", fusion="zscore")


@given(
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1e-9])), max_size=40)
)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_strictly_decreasing_property(values):
    from mmrank.rerank.base import SCORE_LIMIT, strictly_decreasing

    ordered = sorted(values, key=lambda v: -v if v == v else float("inf"))
    out = strictly_decreasing(ordered)
    assert len(out) == len(values)
    assert all(np.isfinite(np.float32(out)))  # inputs are clipped to +-SCORE_LIMIT, ties step below it
    assert all(np.float32(a) > np.float32(b) for a, b in pairwise(out))
    for i, v in enumerate(ordered):  # values that were already apart are kept exactly
        if abs(v) < SCORE_LIMIT and (i == 0 or np.float32(v) < np.float32(out[i - 1])):
            assert out[i] == v
