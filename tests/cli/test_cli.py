from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmrank.cli import main
from mmrank.io import read_trec_run, write_rank_llm_json


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    out = _json(capsys)
    assert "bm25" in out["retriever"] and "bi-encoder" in out["reranker"]


def test_retrieve_then_eval(tmp_path, sample_dir, capsys):
    out = tmp_path / "bm25.run"
    assert (
        main(["retrieve", "--corpus", str(sample_dir), "--retriever", "bm25", "--k", "10", "--out", str(out), "--json"])
        == 0
    )
    info = _json(capsys)
    assert info["queries"] == 6 and out.is_file()
    assert (
        main(
            ["eval", "--qrels", str(sample_dir / "qrels.tsv"), "--run", str(out), "--metrics", "ndcg@10,map", "--json"]
        )
        == 0
    )
    metrics = _json(capsys)
    assert set(metrics) == {"ndcg@10", "map", "queries"} and 0.5 < metrics["ndcg@10"] <= 1
    assert metrics["queries"] == 6  # how many queries were averaged


def test_rerank_trec_run_with_corpus_and_rank_llm_json(tmp_path, sample_dir, capsys):
    first = tmp_path / "first.run"
    main(["retrieve", "--corpus", str(sample_dir), "--k", "10", "--out", str(first)])
    capsys.readouterr()
    out = tmp_path / "re.run"
    rc = main(
        [
            "rerank",
            "--candidates",
            str(first),
            "--corpus",
            str(sample_dir),
            "--queries",
            str(sample_dir / "queries.jsonl"),
            "--reranker",
            "bi-encoder",
            "--top-k",
            "5",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    info = _json(capsys)
    assert info["stages"] == ["bi-encoder"] and info["model_calls"] > 0
    run, before = read_trec_run(out), read_trec_run(first)
    # every candidate is kept (BM25 returns at most 10: only documents that match a query term)
    assert len(run) == 6 and all(set(run[q].ids) == set(before[q].ids) for q in run)
    assert all(0 < len(r) <= 10 for r in before.values())
    # the same candidates as rank_llm JSON need no corpus or queries
    from mmrank.io import load_corpus, load_queries, load_run

    cand = load_run(first, load_corpus(sample_dir))
    qs = {q.id: q for q in load_queries(sample_dir)}
    for qid, r in cand.items():
        r.query = qs[qid]
    js = write_rank_llm_json(cand, tmp_path / "cand.json")
    assert main(["rerank", "--candidates", str(js), "--reranker", "bi-encoder", "--out", str(out)]) == 0


def test_errors_exit_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "qrels.txt"
    bad.write_text("1 0 d1\n")
    run = tmp_path / "run.txt"
    run.write_text("1 Q0 d1 1 1.0 t\n")
    assert main(["eval", "--qrels", str(bad), "--run", str(run)]) == 2
    assert f"{bad}:1:" in capsys.readouterr().err
    assert main(["rerank", "--candidates", str(run), "--reranker", "bi-encodr", "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean 'bi-encoder'" in capsys.readouterr().err


def test_console_script_installed():
    beside = Path(sys.executable).parent / "mmrank"
    exe = str(beside) if beside.is_file() else shutil.which("mmrank")
    if exe is None:
        pytest.skip("package not installed with its console script")
    out = subprocess.run([exe, "list", "--json"], capture_output=True, text=True, check=True).stdout
    assert "retriever" in json.loads(out)
