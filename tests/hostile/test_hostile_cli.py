"""Hostile command lines: every bad input ends in one ``mmrank: error:`` line and exit 2 (argparse usage errors:
exit 2 too), never a traceback, an abort or a silently wrong number (issue 12 items 5, 6, 8, 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmrank.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def files(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("1 0 a 1\n1 0 b 0\n2 0 c 1\n3 0 d 1\n")
    run = tmp_path / "run.txt"
    run.write_text("1 Q0 a 1 2.0 t\n1 Q0 b 2 1.0 t\n")  # answers query 1 only
    other = tmp_path / "other.txt"
    other.write_text("1 Q0 b 1 2.0 t\n1 Q0 a 2 1.0 t\n")
    stranger = tmp_path / "stranger.txt"
    stranger.write_text("99 Q0 a 1 2.0 t\n")
    return {"qrels": qrels, "run": run, "other": other, "stranger": stranger, "dir": tmp_path}


def _fails(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert last.startswith("mmrank: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _usage_error(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_zero_cutoffs_do_not_abort_the_process(files):
    """``ndcg@0`` used to reach pytrec_eval's C assertion and abort the interpreter (exit 134)."""
    script = textwrap.dedent(
        f"""
        from mmrank.cli import main
        codes = [main(["eval", "--qrels", {str(files["qrels"])!r}, "--run", {str(files["run"])!r},
                       "--metrics", m]) for m in ("ndcg@0", "p@0", "recall@0", "map@0", "mrr@0")]
        print(codes)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[2, 2, 2, 2, 2]"
    assert "cutoff must be an integer from 1" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_edges(files, capsys):
    q, r = str(files["qrels"]), str(files["run"])
    _fails(capsys, ["eval", "--qrels", q, "--run", r, "--metrics", "ndcg@99999999999999999999"], "cutoff")
    _fails(capsys, ["eval", "--qrels", q, "--run", r, "--metrics", "bogus@3"], "unknown metric")
    _fails(capsys, ["eval", "--qrels", q, "--run", r, "--metrics", ","], "no metric")
    _fails(capsys, ["eval", "--qrels", q, "--run", str(files["stranger"])], "no query in common")
    _fails(capsys, ["eval", "--qrels", q, "--run", r, "--compare", str(files["other"])], "at least two", "share 1")


def test_eval_averages_the_queries_run_and_says_how_many(files, capsys):
    """Item 10: the run answers 1 of 3 judged queries. Default: mean over that 1 (trec_eval); -c: over all 3."""
    q, r = str(files["qrels"]), str(files["run"])
    assert main(["eval", "--qrels", q, "--run", r, "--metrics", "ndcg@10,p@1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"ndcg@10": 1.0, "p@1": 1.0, "queries": 1}
    assert main(["eval", "--qrels", q, "--run", r, "--metrics", "ndcg@10", "--json", "-c"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] == 3 and out["ndcg@10"] == pytest.approx(1 / 3)
    assert main(["eval", "--qrels", q, "--run", r, "--metrics", "ndcg@10"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ndcg@10\t1.0", "queries\t1"]


def test_json_output_is_always_valid_json(capsys):
    from mmrank.cli.common import emit

    class Args:
        json = True

    emit(Args(), {"mAP": float("nan"), "rows": [float("inf"), 1.5], "nested": {"x": float("-inf")}})
    text = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"bare {constant} in JSON output")

    assert json.loads(text, parse_constant=refuse) == {"mAP": None, "rows": [None, 1.5], "nested": {"x": None}}


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["rerank", "--candidates", "x", "--reranker", "bi-encoder", "--out", "o", "--top-k", "-2"], "--top-k"),
        (["rerank", "--candidates", "x", "--reranker", "bi-encoder", "--out", "o", "--depth", "-1"], "--depth"),
        (["rerank", "--candidates", "x", "--reranker", "bi-encoder", "--out", "o", "--top-k", "0"], "--top-k"),
        (["retrieve", "--corpus", "x", "--out", "o", "--k", "-1"], "--k"),
        (["retrieve", "--corpus", "x", "--out", "o", "--k", "ten"], "--k"),
        (["search", "ix", "--text", "cat", "-k", "-1"], "-k"),
        (["bench", "image-retrieval", "--images", "i", "--labels", "l", "--M", "0"], "--M"),
        (["index", "folder", "--out", "o", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_negative_counts_are_usage_errors(capsys, argv, needle):
    _usage_error(capsys, argv, needle)


def test_unknown_or_mistyped_options_are_named(tmp_path, sample_dir, capsys):
    base = ["retrieve", "--corpus", str(sample_dir), "--out", str(tmp_path / "r.run")]
    _fails(capsys, [*base, "--option", "k_1=0.9"], "takes no option 'k_1'", "k1")
    _fails(capsys, [*base, "--option", "k1=abc"], "k1=", "wrong type")
    _fails(capsys, [*base, "--option", "stemmer=[1]"], "stemmer")
    _fails(capsys, [*base, "--option", "novalue"], "key=value")
    _fails(capsys, [*base, "--option", "=3"], "key=value")


def test_ids_with_whitespace_are_not_written_to_trec_runs(tmp_path, capsys):
    cands = tmp_path / "c.json"
    cands.write_text(json.dumps([{"query": "q", "hits": [{"docid": "doc one", "content": "text", "score": 1.0}]}]))
    _fails(
        capsys,
        ["rerank", "--candidates", str(cands), "--reranker", "bi-encoder", "--out", str(tmp_path / "o.run")],
        "'doc one'",
        "whitespace",
    )
    assert not (tmp_path / "o.run").exists()


def test_empty_topics_and_unindexable_corpus(tmp_path, sample_dir, capsys):
    topics = tmp_path / "topics.tsv"
    topics.write_text("")
    out = str(tmp_path / "r.run")
    _fails(capsys, ["retrieve", "--corpus", str(sample_dir), "--queries", str(topics), "--out", out], "empty topics")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "d1", "text": "the of and"}\n{"_id": "d2", "text": ""}\n')
    (tmp_path / "q.tsv").write_text("1\tthe cat\n")
    with pytest.warns(UserWarning, match="empty"):
        _fails(
            capsys, ["retrieve", "--corpus", str(corpus), "--queries", str(tmp_path / "q.tsv"), "--out", out], "term"
        )


@pytest.mark.parametrize(
    "model",
    ["/no/such/model-folder", "nobody/no-such-model-xyz"],
)
def test_missing_model_is_one_line_naming_it(tmp_path, sample_dir, capsys, model):
    """Item 8: a missing model used to print a 107-line transformers traceback."""
    err = _fails(
        capsys,
        [
            "retrieve",
            "--corpus",
            str(sample_dir),
            "--retriever",
            "dense",
            "--model",
            model,
            "--out",
            str(tmp_path / "r"),
        ],
        repr(model),
        "not found",
        "--model /path/to/model-folder",
    )
    assert str(Path(model).resolve()) in err  # where it looked


def test_out_of_range_method_options_are_option_errors(tmp_path, sample_dir, capsys):
    base = ["retrieve", "--corpus", str(sample_dir), "--out", str(tmp_path / "r.run")]
    _fails(capsys, [*base, "--option", "k1=-5"], "k1 >= 0")
    _fails(capsys, [*base, "--option", "b=1.5"], "b <= 1")
    _fails(
        capsys,
        [*base, "--retriever", "hybrid", "--option", "weights=[1]", "--option", 'method="weighted"'],
        "1 weights for 2 retrievers",
    )
