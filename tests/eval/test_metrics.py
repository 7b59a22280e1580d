"""Metrics on a hand-worked example (trec_eval conventions: linear graded gains, log2 discount)."""

from __future__ import annotations

import math

import pytest

from mmrank.errors import UnknownNameError
from mmrank.eval import compare, evaluate, significance
from mmrank.types import Hit, Ranking, Run

QRELS = {"q1": {"d1": 2, "d2": 0, "d3": 1}, "q2": {"d9": 1}}
RUN = Run([Ranking("q1", [Hit("d2", 3.0), Hit("d1", 2.0), Hit("d3", 1.0)]), Ranking("q2", [Hit("x", 1.0)])])


def test_ndcg_by_hand():
    dcg = 0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    per = evaluate(RUN, QRELS, ["ndcg@3"], per_query=True)["ndcg@3"]
    assert per["q1"] == pytest.approx(dcg / idcg)
    assert per["q2"] == 0.0
    assert evaluate(RUN, QRELS, "ndcg@3")["ndcg@3"] == pytest.approx(dcg / idcg / 2)


def test_binary_metrics_and_threshold():
    per = evaluate(RUN, QRELS, ["map", "mrr", "p@2", "recall@2"], per_query=True)
    assert per["map"]["q1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert per["mrr"]["q1"] == pytest.approx(1 / 2)
    assert per["p@2"]["q1"] == pytest.approx(1 / 2)
    assert per["recall@2"]["q1"] == pytest.approx(1 / 2)
    strict = evaluate(RUN, QRELS, ["map", "recall@2"], rel=2, per_query=True)
    assert strict["map"]["q1"] == pytest.approx(1 / 2)  # only d1 counts
    assert strict["recall@2"]["q1"] == pytest.approx(1.0)


def test_order_by_score_like_trec_eval():
    # hits listed in the wrong order: trec_eval (and we) sort by score
    run = Run([Ranking("q1", [Hit("d3", 1.0), Hit("d1", 5.0)])])
    assert evaluate(run, QRELS, ["mrr"], per_query=True)["mrr"]["q1"] == 1.0


def test_unknown_metric():
    with pytest.raises(UnknownNameError, match="unknown metric"):
        evaluate(RUN, QRELS, ["ndgc@10"])
    with pytest.raises(UnknownNameError, match="needs a cutoff"):
        evaluate(RUN, QRELS, ["recall"])


def test_significance_against_scipy_formula():
    a = {"1": 0.5, "2": 0.7, "3": 0.2, "4": 0.9}
    b = {"1": 0.4, "2": 0.5, "3": 0.25, "4": 0.6}
    res = significance(a, b)
    d = [a[k] - b[k] for k in a]
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    t = mean / (sd / 2)
    from scipy.stats import t as tdist

    assert res["mean_diff"] == pytest.approx(mean)
    assert res["p_value"] == pytest.approx(2 * tdist.sf(abs(t), 3))
    assert significance(a, a)["p_value"] == 1.0
    perm = significance(a, b, test="permutation", n_resamples=1000)
    assert 0 < perm["p_value"] <= 1


def test_compare_runs():
    other = Run([Ranking("q1", [Hit("d1", 3.0), Hit("d3", 2.0)]), Ranking("q2", [Hit("d9", 1.0)])])
    res = compare(other, RUN, QRELS, ["ndcg@3"])["ndcg@3"]
    assert res["a"] > res["b"] and res["n"] == 2


def test_evaluation_rules_for_bad_runs_and_qrels():
    """Issue 12 items 5, 6, 10: NaN scores, non-integer grades, no common query, zero cutoffs; averaging."""
    from mmrank.errors import DataFormatError, EvaluationError, UnknownNameError

    qrels = {"1": {"a": 1}, "2": {"b": 1}}
    with pytest.raises(DataFormatError, match="'a' has score nan"):
        evaluate({"1": {"a": float("nan"), "c": 1.0}}, qrels, ["ndcg@10"])
    with pytest.raises(DataFormatError, match=r"grade 1\.9"):
        evaluate({"1": {"a": 1.0}}, {"1": {"a": 1.9}}, ["ndcg@10"])
    with pytest.raises(EvaluationError, match="no query in common"):
        evaluate({"3": {"a": 1.0}}, qrels, ["ndcg@10"])
    for bad in ("ndcg@0", "p@0", "recall@0", "map@0", f"ndcg@{2**31}"):
        with pytest.raises(UnknownNameError, match="cutoff"):
            evaluate({"1": {"a": 1.0}}, qrels, [bad])
    m = evaluate({"1": {"a": 1.0}}, qrels, ["ndcg@10"])
    assert m == {"ndcg@10": 1.0} and m.queries == 1 and not m.complete  # trec_eval's default
    c = evaluate({"1": {"a": 1.0}}, qrels, ["ndcg@10"], complete=True)
    assert c == {"ndcg@10": 0.5} and c.queries == 2  # trec_eval -c
    pq = evaluate({"1": {"a": 1.0}}, qrels, ["ndcg@10", "NDCG@10"], per_query=True)
    assert pq == {"ndcg@10": {"1": 1.0}, "NDCG@10": {"1": 1.0}}
