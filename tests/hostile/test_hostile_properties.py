"""Property tests over random and adversarial inputs (hypothesis, with a deadline per example): readers either
return or raise a typed MmrankError; runs round-trip through TREC files exactly; normalisation never spreads NaN."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmrank.errors import MmrankError
from mmrank.eval.metrics import evaluate
from mmrank.fusion import normalise, weighted
from mmrank.io import load_corpus, load_qrels, load_queries, load_run, read_rankify_json, write_trec_run
from mmrank.types import Hit, Ranking, Run

SETTINGS = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
TOKENS = st.sampled_from(["1", "Q0", "d1", "d2", "0", "2", "nan", "inf", "-1", "1e30", "2.0", "x", "\t", "é", ""])
LINE = st.lists(TOKENS, max_size=7).map(" ".join) | st.text(max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "_id",
                    "id",
                    "text",
                    "title",
                    "query",
                    "hits",
                    "candidates",
                    "docid",
                    "score",
                    "qid",
                    "question",
                    "ctxs",
                    "content",
                    "image",
                    "page",
                    "doc_id",
                ]
            ),
            kids,
            max_size=5,
        )
    ),
    max_leaves=12,
)


def _through(reader, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # empty documents: kept with a warning (documented)
            with contextlib.suppress(MmrankError):  # typed: the CLI turns it into one line and exit 2
                reader(p)


@SETTINGS
@given(st.lists(LINE, max_size=6), st.sampled_from(["run.txt", "qrels.txt", "qrels.tsv", "topics.tsv"]))
def test_text_readers_return_or_raise_typed(lines, name):
    reader = {"run.txt": load_run, "qrels.txt": load_qrels, "qrels.tsv": load_qrels, "topics.tsv": load_queries}
    _through(reader[name], name, "\n".join(lines).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from(["run.txt", "qrels.txt", "topics.tsv", "c.jsonl", "c.json"]))
def test_random_bytes_return_or_raise_typed(data, name):
    reader = {"run.txt": load_run, "qrels.txt": load_qrels, "topics.tsv": load_queries, "c.jsonl": load_corpus}
    _through(reader.get(name, load_run), name, data)


@SETTINGS
@given(st.lists(JSON, max_size=4))
def test_jsonl_readers_return_or_raise_typed(objs):
    data = "\n".join(json.dumps(o) for o in objs).encode()
    _through(load_corpus, "corpus.jsonl", data)
    _through(load_queries, "queries.jsonl", data)


@SETTINGS
@given(JSON)
def test_json_run_readers_return_or_raise_typed(obj):
    data = json.dumps(obj).encode()
    _through(load_run, "cands.json", data)
    _through(lambda p: read_rankify_json(p), "rankify.json", data)


IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.:#", min_size=1, max_size=8)
SCORES = st.floats(allow_nan=False, allow_infinity=False, width=64)


@SETTINGS
@given(st.dictionaries(IDS, st.dictionaries(IDS, SCORES, min_size=1, max_size=8), min_size=1, max_size=4))
def test_trec_round_trip_keeps_scores_and_order_exactly(data):
    """Item 10: written at full precision, a run reads back with the same scores, order and evaluation."""
    run = Run(
        Ranking(q, sorted((Hit(d, s) for d, s in docs.items()), key=lambda h: -h.score)) for q, docs in data.items()
    )
    with tempfile.TemporaryDirectory() as d:
        back = load_run(write_trec_run(run, Path(d) / "r.run"))
    for q in run:
        assert back[q].ids == run[q].ids
        assert back[q].scores == run[q].scores  # bit-identical floats
    qrels = {q: {ids[0]: 1 for ids in [run[q].ids]} for q in run}
    assert evaluate(back, qrels, ["ndcg@10", "map"]) == evaluate(run, qrels, ["ndcg@10", "map"])


VALUES = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=12)


@SETTINGS
@given(VALUES, st.sampled_from(["zscore", "minmax"]))
def test_normalise_never_spreads_nan_and_floors_bad_scores(values, how):
    s = np.asarray(values, dtype=np.float64)
    out = normalise(s, how)
    assert np.isfinite(out).all()
    finite = np.isfinite(s)
    if finite.any() and np.ptp(s[finite]) < 1e300:
        np.testing.assert_allclose(out[finite], normalise(s[finite], how), rtol=1e-9, atol=1e-9)
        assert (out[np.isnan(s) | np.isneginf(s)] == out[finite].min()).all()


@SETTINGS
@given(st.lists(st.tuples(IDS, st.floats(allow_nan=True, allow_infinity=False)), max_size=10, unique_by=lambda t: t[0]))
def test_sorted_puts_nan_last_and_never_first(pairs):
    r = Ranking("q", [Hit(d, s) for d, s in pairs]).sorted()
    nan = [math.isnan(h.score) for h in r.hits]
    assert nan == sorted(nan)  # all NaN at the end
    finite = [h.score for h in r.hits if not math.isnan(h.score)]
    assert finite == sorted(finite, reverse=True)


def test_weighted_zscore_gives_missing_documents_the_floor():
    """Item 10: a document absent from one ranking gets that ranking's lowest z-score, not its mean (0)."""
    a = Ranking("q", [Hit("x", 3.0), Hit("y", 2.0), Hit("z", 1.0)])
    b = Ranking("q", [Hit("y", 10.0), Hit("x", 0.0)])  # z is missing from b
    z = 1.0 / np.std([3.0, 2.0, 1.0])  # a: x=+z, y=0, z=-z; b: y=+1, x=-1 (floor -1)
    hits = {h.id: h.score for h in weighted([a, b], [0.5, 0.5], how="zscore")}
    assert abs(hits["x"] - (0.5 * z - 0.5)) < 1e-12
    assert abs(hits["y"] - 0.5) < 1e-12
    assert abs(hits["z"] - (-0.5 * z - 0.5)) < 1e-12  # its mean would have given -0.5 * z
