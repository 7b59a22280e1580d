"""Retrieval metrics through ir_measures (MacAvaney et al., ECIR 2022) with trec_eval conventions.

Graded gains for nDCG; binary metrics (MAP, MRR, Recall, P) count a document relevant when its
label is ``>= rel`` (trec_eval ``-l``; TREC DL uses ``rel=2``). Like trec_eval, documents are
ordered by score, and by default only queries present in both the run and the qrels are averaged
(trec_eval's default); ``complete=True`` is trec_eval ``-c``: every judged query is averaged and a query
the run lacks scores 0. The result always says how many queries were averaged (:attr:`Means.queries`).

Rules (one per case): a run with no query in common with the qrels is an :class:`EvaluationError`, not 0.0;
run scores must be finite (NaN would order arbitrarily) and grades integers, else :class:`DataFormatError`;
metric cutoffs are integers in ``[1, 2**31 - 1]`` (``@0`` would abort pytrec_eval's C code).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import ir_measures

from mmrank.errors import DataFormatError, EvaluationError, UnknownNameError
from mmrank.types import Qrels, Run

MAX_CUTOFF = 2**31 - 1


class Means(dict[str, float]):
    """``{metric: mean}`` (a plain dict to callers) plus how it was averaged: :attr:`queries` (how many queries
    were averaged) and :attr:`complete` (whether judged queries missing from the run counted as 0)."""

    def __init__(self, values: dict[str, float], *, queries: int, complete: bool) -> None:
        super().__init__(values)
        self.queries = queries
        self.complete = complete

    def to_json(self) -> dict[str, float | int]:
        """The means plus ``"queries": N`` (the CLI's ``--json`` layout)."""
        return {**self, "queries": self.queries}


_BINARY = {"map": "AP", "ap": "AP", "mrr": "RR", "rr": "RR", "recall": "R", "r": "R", "p": "P", "precision": "P"}
_GRADED = {"ndcg": "nDCG", "ndcg_cut": "nDCG"}
_PATTERN = re.compile(r"^([a-z_]+)(?:@(\d+))?$")


def parse_metric(name: str, rel: int = 1) -> Any:
    """``"ndcg@10"`` -> ``nDCG@10``; ``"map"`` -> ``AP(rel=rel)``; ``"recall@100"`` -> ``R(rel=rel)@100``."""
    m = _PATTERN.match(name.strip().lower())
    if not m or (m.group(1) not in _BINARY and m.group(1) not in _GRADED):
        known = "ndcg@k, map, map@k, mrr, mrr@k, recall@k, p@k"
        raise UnknownNameError(f"unknown metric {name!r}; known: {known}")
    base, cutoff = m.group(1), m.group(2)
    if cutoff is not None and not 1 <= int(cutoff) <= MAX_CUTOFF:
        raise UnknownNameError(f"metric {name!r}: the cutoff must be an integer from 1 to {MAX_CUTOFF}")
    measure: Any
    if base in _GRADED:
        measure = ir_measures.nDCG
    else:
        measure = getattr(ir_measures, _BINARY[base])(rel=rel)
    if cutoff is not None:
        measure = measure @ int(cutoff)
    elif base in ("recall", "r", "p", "precision"):
        raise UnknownNameError(f"metric {name!r} needs a cutoff, e.g. {base}@10")
    return measure


def _run_dict(run: Run | Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    rd = (
        run.as_dict()
        if isinstance(run, Run)
        else {str(q): {str(d): s for d, s in docs.items()} for q, docs in run.items()}
    )
    for q, docs in rd.items():
        for d, s in docs.items():
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                raise DataFormatError(f"run: query {q!r}, doc {d!r} has score {s!r}; scores must be finite numbers")
    return {q: {d: float(s) for d, s in docs.items()} for q, docs in rd.items()}


def _qrels_dict(qrels: Qrels) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for q, docs in qrels.items():
        row = out.setdefault(str(q), {})
        for d, r in docs.items():
            if isinstance(r, bool) or (not isinstance(r, int) and not (isinstance(r, float) and r.is_integer())):
                raise DataFormatError(f"qrels: query {q!r}, doc {d!r} has grade {r!r}; grades must be integers")
            row[str(d)] = int(r)
    return out


def _measures(metrics: Sequence[str] | str, rel: int) -> dict[str, Any]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    names = [n.strip() for part in names for n in part.split(",") if n.strip()]
    if not names:
        raise UnknownNameError("no metric given")
    return {n: parse_metric(n, rel) for n in names}


def evaluate(
    run: Run | Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    metrics: Sequence[str] | str = ("ndcg@10",),
    *,
    rel: int = 1,
    per_query: bool = False,
    complete: bool = False,
) -> Means | dict[str, dict[str, float]]:
    """Mean of each metric over the judged queries of ``run`` (a :class:`Means`, whose ``queries`` says how
    many); with ``per_query`` ``{metric: {qid: value}}``. ``complete=True`` averages every judged query, counting
    a query missing from the run as 0 (trec_eval ``-c``). No common query raises :class:`EvaluationError`."""
    measures = _measures(metrics, rel)
    rd = _run_dict(run)
    qrels_s = _qrels_dict(qrels)
    common = [q for q in qrels_s if q in rd]
    if not common:
        raise EvaluationError(
            f"the run ({len(rd)} queries) and the qrels ({len(qrels_s)} queries) have no query in common; "
            "check that they belong together (query ids must match exactly)"
        )
    if not complete:
        qrels_s = {q: qrels_s[q] for q in common}
    n_queries = len(qrels_s)
    if not per_query:
        agg = ir_measures.calc_aggregate(list(dict.fromkeys(measures.values())), qrels_s, rd)
        return Means({n: float(agg[m]) for n, m in measures.items()}, queries=n_queries, complete=complete)
    out: dict[str, dict[str, float]] = {n: {} for n in measures}
    names_of: dict[Any, list[str]] = {}
    for n, m in measures.items():
        names_of.setdefault(m, []).append(n)
    for mv in ir_measures.iter_calc(list(names_of), qrels_s, rd):
        for n in names_of[mv.measure]:
            out[n][mv.query_id] = float(mv.value)
    return out


def significance(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    test: Literal["ttest", "wilcoxon", "permutation"] = "ttest",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, float]:
    """Paired two-sided test between two runs' per-query values (common queries only)."""
    from scipy import stats

    qids = sorted(set(a) & set(b))
    if len(qids) < 2:
        raise EvaluationError(f"a paired test needs at least two common queries; the runs share {len(qids)}")
    x = [a[q] for q in qids]
    y = [b[q] for q in qids]
    diff = sum(xi - yi for xi, yi in zip(x, y, strict=True)) / len(qids)
    if all(xi == yi for xi, yi in zip(x, y, strict=True)):
        p = 1.0
    elif test == "ttest":
        p = float(stats.ttest_rel(x, y).pvalue)
    elif test == "wilcoxon":
        p = float(stats.wilcoxon(x, y).pvalue)
    elif test == "permutation":
        res = stats.permutation_test(
            (x, y),
            lambda u, v: sum(ui - vi for ui, vi in zip(u, v, strict=True)) / len(u),
            permutation_type="samples",
            n_resamples=n_resamples,
            random_state=seed,
            vectorized=False,
        )
        p = float(res.pvalue)
    else:
        raise UnknownNameError(f"unknown test {test!r}; use ttest, wilcoxon or permutation")
    return {"n": float(len(qids)), "mean_diff": diff, "p_value": p if not math.isnan(p) else 1.0}


def compare(
    run_a: Run,
    run_b: Run,
    qrels: Qrels,
    metrics: Iterable[str] = ("ndcg@10",),
    *,
    rel: int = 1,
    test: str = "ttest",
    complete: bool = False,
) -> dict[str, dict[str, float]]:
    """Per metric: mean of a and of b over the judged queries both runs answer, and the paired test of a vs b
    (``n`` is the number of queries averaged and tested)."""
    out = {}
    for m in metrics:
        pa = evaluate(run_a, qrels, [m], rel=rel, per_query=True, complete=complete)[m]
        pb = evaluate(run_b, qrels, [m], rel=rel, per_query=True, complete=complete)[m]
        assert isinstance(pa, dict) and isinstance(pb, dict)
        res = significance(pa, pb, test=test)  # type: ignore[arg-type]
        qids = set(pa) & set(pb)
        out[m] = {
            "a": sum(pa[q] for q in qids) / len(qids),
            "b": sum(pb[q] for q in qids) / len(qids),
            **res,
        }
    return out
