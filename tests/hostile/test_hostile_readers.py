"""Every reader through the generated hostile corpus (tests/hostile/corpus.py): each case ends in a typed
``MmrankError`` naming the file (and line), or in the documented result -- never a traceback of another type,
never a silently wrong value."""

from __future__ import annotations

import warnings

import pytest

from mmrank.errors import MmrankError
from mmrank.io import load_corpus, load_qrels, load_queries, load_run, read_rankify_json
from tests.hostile.corpus import Case, cases, write


def _bm25(path):
    from mmrank.retrieve.bm25 import BM25Retriever

    return BM25Retriever().index(load_corpus(path))


def _labels(path):
    from mmrank.vision.bench import read_labels

    return read_labels(path, path.parent)


READERS = {
    "run": load_run,
    "qrels": load_qrels,
    "corpus": load_corpus,
    "queries": load_queries,
    "rank_llm": load_run,
    "rankify": lambda p: read_rankify_json(p)[0],
    "bm25": _bm25,
    "labels": _labels,
}
CASES = list(cases())


def test_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 120
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_input(case: Case, tmp_path):
    path = write(case, tmp_path / "in")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty documents are kept with a warning (a documented fallback)
        if case.expect == "ok":
            result = READERS[case.target](path)
            if case.check is not None:
                case.check(result)
            return
        with pytest.raises(MmrankError) as err:
            READERS[case.target](path)
    msg = str(err.value)
    assert "\n" not in msg.strip() and len(msg) < 2000, msg  # one readable line
    if case.target != "bm25":  # BM25 names the corpus, the reader names the file
        assert str(path) in msg or getattr(err.value, "path", None) == str(path), msg
    if case.match is not None:
        assert case.match in msg, msg
    if case.line is not None:
        assert getattr(err.value, "line", None) == case.line, msg
