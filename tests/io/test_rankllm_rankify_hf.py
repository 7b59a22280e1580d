from __future__ import annotations

import json

import pytest

from mmrank.errors import DataFormatError
from mmrank.io import load_run, pairs_from_hf, read_rank_llm_json, read_rankify_json, write_rank_llm_json


def test_rank_llm_json_old_and_new_layouts(tmp_path):
    old = [
        {
            "query": "q text",
            "hits": [
                {"content": "A", "qid": 7, "docid": "a", "rank": 1, "score": 3.0},
                {"content": "B", "qid": 7, "docid": "b", "rank": 2, "score": 2.0},
            ],
        }
    ]
    p = tmp_path / "old.json"
    p.write_text(json.dumps(old))
    run = read_rank_llm_json(p)
    r = run["7"]
    assert r.query.text == "q text" and r.ids == ["a", "b"] and r.hits[0].item.text == "A"
    new = [
        {
            "query": {"text": "q", "qid": "9"},
            "candidates": [{"docid": "x", "score": 1.0, "doc": {"title": "T", "contents": "C"}}],
        }
    ]
    p2 = tmp_path / "new.json"
    p2.write_text(json.dumps(new))
    assert read_rank_llm_json(p2)["9"].hits[0].item.full_text == "T C"
    # round trip through the writer
    out = write_rank_llm_json(run, tmp_path / "back.json")
    assert read_rank_llm_json(out)["7"].ids == ["a", "b"]
    assert load_run(out)["7"].ids == ["a", "b"]


@pytest.mark.parametrize(
    "payload,match",
    [
        ({"query": "x"}, "JSON list"),
        ([{"hits": []}], "no 'query'"),
        ([{"query": "x", "hits": [{"content": "a"}]}], "no 'docid'"),
        ([{"query": "", "hits": []}], "empty query"),
        ([{"query": "x", "hits": [{"docid": "a", "qid": 1}]}], "no content"),
    ],
)
def test_rank_llm_json_bad(tmp_path, payload, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(payload))
    with pytest.raises(DataFormatError, match=match):
        read_rank_llm_json(p)


def test_rank_llm_json_truncated(tmp_path):
    p = tmp_path / "t.json"
    p.write_text('[{"query": "x", "hits": [')
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_rank_llm_json(p)


def test_rankify_dpr_json(tmp_path):
    data = [
        {
            "question": "who wrote hamlet",
            "answers": ["Shakespeare"],
            "ctxs": [
                {"id": "10", "title": "Hamlet", "text": "by Shakespeare", "score": 9.1, "has_answer": True},
                {"id": "11", "title": "Macbeth", "text": "a play", "score": 8.0, "has_answer": False},
            ],
        }
    ]
    p = tmp_path / "dpr.json"
    p.write_text(json.dumps(data))
    run, qrels = read_rankify_json(p)
    assert run["0"].ids == ["10", "11"] and qrels == {"0": {"10": 1}}
    assert run["0"].query.meta["answers"] == ["Shakespeare"]
    assert load_run(p)["0"].ids == ["10", "11"]


def test_hf_pairs_dataset():
    from datasets import Dataset

    ds = Dataset.from_dict({"query": ["a?", "a?", "b?"], "document": ["x", "y", "x"], "label": [1, 0, 1]})
    queries, corpus, qrels = pairs_from_hf(ds)
    assert [q.text for q in queries] == ["a?", "b?"]
    assert len(corpus) == 2 and qrels == {"q0": {"d0": 1, "d1": 0}, "q1": {"d0": 1}}
    with pytest.raises(DataFormatError, match="no column"):
        pairs_from_hf(ds, doc_column="passage")
