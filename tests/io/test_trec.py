from __future__ import annotations

import pytest

from mmrank.errors import DataFormatError
from mmrank.io import load_qrels, read_topics, read_trec_qrels, read_trec_run, write_trec_run
from mmrank.types import Hit, Ranking, Run


def test_run_round_trip(tmp_path):
    run = Run([Ranking("1", [Hit("d1", 2.5), Hit("d2", 1.0)]), Ranking("2", [Hit("d9", 0.1)])], name="x")
    p = write_trec_run(run, tmp_path / "run.txt", tag="tag")
    assert p.read_text().splitlines()[0] == "1 Q0 d1 1 2.5 tag"  # full precision, shortest round-trip form
    back = read_trec_run(p)
    assert back.as_dict() == run.as_dict()
    assert back["1"].ids == ["d1", "d2"]


def test_run_sorted_by_score(tmp_path):
    p = tmp_path / "r.txt"
    p.write_text("1 Q0 a 1 0.5 t\n1 Q0 b 2 0.9 t\n")
    assert read_trec_run(p)["1"].ids == ["b", "a"]


@pytest.mark.parametrize(
    "content,match,line",
    [
        ("1 Q0 a 1 0.5\n", "6 fields", 1),
        ("1 Q0 a 1 0.5 t\n1 Q0 a 2 0.4 t\n", "duplicate doc id", 2),
        ("1 Q0 a 1 high t\n", "not a number", 1),
    ],
)
def test_bad_runs(tmp_path, content, match, line):
    p = tmp_path / "bad.run"
    p.write_text(content)
    with pytest.raises(DataFormatError, match=match) as e:
        read_trec_run(p)
    assert e.value.line == line and e.value.path == str(p)


def test_qrels_good_and_bad(tmp_path):
    p = tmp_path / "q.txt"
    p.write_text("1 0 d1 2\n1 0 d2 0\n2 0 d1 1\n")
    assert read_trec_qrels(p) == {"1": {"d1": 2, "d2": 0}, "2": {"d1": 1}}
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0 d1 2\n1 0 d2\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: a qrels line needs 4 fields"):
        read_trec_qrels(bad)
    bad.write_text("1 0 d1 two\n")
    with pytest.raises(DataFormatError, match="not an integer"):
        read_trec_qrels(bad)


def test_non_utf8_names_line(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes(b"1 0 d1 2\n1 0 caf\xe9 1\n")
    with pytest.raises(DataFormatError, match=r"latin1.txt:2: invalid UTF-8"):
        read_trec_qrels(p)


def test_topics(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("1\tdo goldfish grow\n2\twifi\n")
    assert [(q.id, q.text) for q in read_topics(p)] == [("1", "do goldfish grow"), ("2", "wifi")]
    p.write_text("1\t   \n")
    with pytest.raises(DataFormatError, match="empty text"):
        read_topics(p)


def test_load_qrels_detects_format(tmp_path):
    beir = tmp_path / "qrels.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert load_qrels(beir) == {"q1": {"d1": 1}}
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 3\n")
    assert load_qrels(trec) == {"q1": {"d1": 3}}


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_trec_run(tmp_path / "nope.txt")


def test_full_precision_keeps_the_order_of_close_scores(tmp_path):
    """Issue 12 item 10: with %.6f these three tied after a round trip and were re-ordered by doc id."""
    from mmrank.eval.metrics import evaluate

    run = Run([Ranking("1", [Hit("z", 0.1234567), Hit("m", 0.12345665), Hit("a", 0.1234566)])])
    back = read_trec_run(write_trec_run(run, tmp_path / "r.run"))
    assert back["1"].ids == ["z", "m", "a"] and back["1"].scores == run["1"].scores
    qrels = {"1": {"a": 1}}
    assert evaluate(back, qrels, ["mrr@10"]) == evaluate(run, qrels, ["mrr@10"]) == {"mrr@10": 1 / 3}


@pytest.mark.parametrize("qid,doc", [("q 1", "d"), ("q", "d\t2"), ("q", "d\n"), ("q\u00a0x", "d")])
def test_ids_that_would_not_read_back_are_refused(tmp_path, qid, doc):
    run = Run([Ranking(qid, [Hit(doc, 1.0)])])
    with pytest.raises(DataFormatError, match="whitespace"):
        write_trec_run(run, tmp_path / "r.run")
    assert not (tmp_path / "r.run").exists()


def test_non_finite_scores_are_not_written(tmp_path):
    run = Run([Ranking("1", [Hit("a", float("nan"))])])
    with pytest.raises(DataFormatError, match="not finite"):
        write_trec_run(run, tmp_path / "r.run")
