"""Retrieval metrics through ir_measures (MacAvaney et al., ECIR 2022) with trec_eval conventions.

Graded gains for nDCG; binary metrics (MAP, MRR, Recall, P) count a document relevant when its
label is ``>= rel`` (trec_eval ``-l``; TREC DL uses ``rel=2``). Like trec_eval, documents are
ordered by score and only queries present in both the run and the qrels are averaged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import ir_measures

from mmrank.errors import UnknownNameError
from mmrank.types import Qrels, Run

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
    return run.as_dict() if isinstance(run, Run) else {q: dict(d) for q, d in run.items()}


def evaluate(
    run: Run | Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    metrics: Sequence[str] | str = ("ndcg@10",),
    *,
    rel: int = 1,
    per_query: bool = False,
) -> dict[str, float] | dict[str, dict[str, float]]:
    """Mean of each metric over the judged queries of ``run``; with ``per_query`` ``{metric: {qid: value}}``."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    names = [n for part in names for n in part.split(",") if n.strip()]
    measures = {n.strip(): parse_metric(n, rel) for n in names}
    rd = _run_dict(run)
    qrels_s = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    if not per_query:
        agg = ir_measures.calc_aggregate(list(measures.values()), qrels_s, rd)
        return {n: float(agg[m]) for n, m in measures.items()}
    out: dict[str, dict[str, float]] = {n: {} for n in measures}
    back = {m: n for n, m in measures.items()}
    for mv in ir_measures.iter_calc(list(measures.values()), qrels_s, rd):
        out[back[mv.measure]][mv.query_id] = float(mv.value)
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
        raise ValueError("a paired test needs at least two common queries")
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
    run_a: Run, run_b: Run, qrels: Qrels, metrics: Iterable[str] = ("ndcg@10",), *, rel: int = 1, test: str = "ttest"
) -> dict[str, dict[str, float]]:
    """Per metric: mean of a, mean of b, and the paired test of a vs b."""
    out = {}
    for m in metrics:
        pa = evaluate(run_a, qrels, [m], rel=rel, per_query=True)[m]
        pb = evaluate(run_b, qrels, [m], rel=rel, per_query=True)[m]
        assert isinstance(pa, dict) and isinstance(pb, dict)
        res = significance(pa, pb, test=test)  # type: ignore[arg-type]
        out[m] = {"a": sum(pa.values()) / len(pa), "b": sum(pb.values()) / len(pb), **res}
    return out
