from __future__ import annotations

import json

import pytest

from mmrank.errors import DataFormatError
from mmrank.io import (
    load_corpus,
    load_queries,
    read_beir_corpus,
    read_beir_queries,
    read_items_jsonl,
    read_queries_jsonl,
    write_items_jsonl,
)
from mmrank.types import Corpus, Item, PageRef


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_beir_corpus_and_queries(tmp_path):
    c = _jsonl(tmp_path / "corpus.jsonl", [{"_id": "1", "title": "T", "text": "body", "extra": 5}])
    q = _jsonl(tmp_path / "queries.jsonl", [{"_id": "q", "text": "what"}])
    corpus = read_beir_corpus(c)
    assert corpus["1"].full_text == "T body" and corpus["1"].meta == {"extra": 5}
    assert [x.text for x in read_beir_queries(q)] == ["what"]
    assert len(load_corpus(tmp_path)) == 1 and load_queries(tmp_path)[0].id == "q"


def test_beir_line_not_json(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: not valid JSON"):
        read_beir_corpus(p)


def test_beir_empty_query_and_empty_doc(tmp_path):
    q = _jsonl(tmp_path / "queries.jsonl", [{"_id": "q", "text": ""}])
    with pytest.raises(DataFormatError, match=r"queries.jsonl:1: query 'q' has empty text"):
        read_beir_queries(q)
    c = _jsonl(tmp_path / "corpus.jsonl", [{"_id": "1", "title": "", "text": ""}])
    with pytest.warns(UserWarning, match="empty"):
        corpus = read_beir_corpus(c)
    assert corpus["1"].text == ""


def test_items_jsonl_round_trip_all_modalities(tmp_path):
    items = Corpus(
        [
            Item("t", text="hello", title="T"),
            Item("i", image=str(tmp_path / "a.png")),
            Item("p", image=str(tmp_path / "p1.png"), text="layer", page=PageRef("doc", 2), meta={"lang": "en"}),
        ]
    )
    p = write_items_jsonl(items, tmp_path / "items.jsonl")
    back = read_items_jsonl(p)
    for k in items:
        a, b = items[k], back[k]
        assert (a.text, a.title, a.image, a.page, a.meta) == (b.text, b.title, b.image, b.page, b.meta)


def test_items_jsonl_relative_image_and_errors(tmp_path):
    p = _jsonl(tmp_path / "items.jsonl", [{"id": "x", "image": "imgs/x.jpg"}])
    assert read_items_jsonl(p)["x"].image == str(tmp_path / "imgs" / "x.jpg")
    _jsonl(p, [{"id": "x"}])
    with pytest.raises(DataFormatError, match="no text, title or image"):
        read_items_jsonl(p)
    _jsonl(p, [{"id": "x", "text": "a", "page": 2}])
    with pytest.raises(DataFormatError, match="'page' needs 'doc_id'"):
        read_items_jsonl(p)
    _jsonl(p, [[1, 2]])
    with pytest.raises(DataFormatError, match="expected a JSON object"):
        read_items_jsonl(p)


def test_composed_queries_jsonl(tmp_path):
    p = _jsonl(
        tmp_path / "q.jsonl", [{"id": "c", "text": "make it blue", "image": "ref.png"}, {"id": "t", "text": "x"}]
    )
    qs = read_queries_jsonl(p)
    assert qs[0].composed and qs[0].image == str(tmp_path / "ref.png") and not qs[1].composed
    _jsonl(p, [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(DataFormatError, match="duplicate query id"):
        read_queries_jsonl(p)
