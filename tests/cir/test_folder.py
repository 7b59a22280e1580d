"""Folder mode: queries JSONL (typed errors naming the line), gallery ids, search, recall, contact sheet."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mmrank.cir.folder import cir_search, folder_gallery, load_cir_queries, target_recall
from mmrank.cir.retrieve import ComposedRetriever
from mmrank.cir.sheet import cir_sheet
from mmrank.errors import DataFormatError


def test_folder_queries_search_and_sheet(tiny_clip, synthetic, tmp_path):
    corpus, _, _ = synthetic
    root = next(iter(corpus.values())).image.parent.parent  # the synthetic set's folder (images/ + queries.jsonl)
    gallery, warnings = folder_gallery(root / "images")
    assert len(gallery) == len(corpus) and warnings == []
    queries = load_cir_queries(root / "queries.jsonl", root / "images")
    assert len(queries) == 32
    q = queries[0]
    assert q.meta["reference_id"] == "astronaut.png" and q.meta["targets"] == ["astronaut_flip.png"]
    assert q.meta["exclude"] == ["astronaut.png"]
    run = cir_search(gallery, queries, ComposedRetriever(tiny_clip), k=10)
    assert all(q.meta["reference_id"] not in run[q.id].ids for q in queries)
    rec = target_recall(run, queries, ks=(1, 10))
    by_hand = sum(bool(set(q.meta["targets"]) & set(run[q.id].ids[:10])) for q in queries) / 32 * 100
    assert rec == {"n_queries": 32, "R@1": rec["R@1"], "R@10": pytest.approx(by_hand)}
    png = cir_sheet([(q, run[q.id]) for q in queries[:3]], tmp_path / "sheet.png", k=4, thumb=80)
    assert Image.open(png).size == (6 * 88 + 8, 3 * (80 + 36 + 8) + 8)


def test_queries_file_errors_name_the_line(tmp_path):
    (tmp_path / "ref.png").write_bytes(b"")
    lines = [
        {"id": "a", "reference": "ref.png", "text": "make it red"},
        {"id": "a", "reference": "ref.png", "text": "again"},
    ]
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(DataFormatError, match=r"q\.jsonl:2: duplicate query id 'a'"):
        load_cir_queries(f, tmp_path)
    f.write_text(json.dumps({"id": "b", "reference": "missing.png", "text": "x"}))
    with pytest.raises(DataFormatError, match=r"q\.jsonl:1: query 'b': reference image .*missing\.png not found"):
        load_cir_queries(f, tmp_path)
    f.write_text(json.dumps({"id": "c", "reference": "ref.png"}))
    with pytest.raises(DataFormatError, match=r":1: query 'c': 'text'"):
        load_cir_queries(f, tmp_path)
    f.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"q\.jsonl:1: invalid JSON"):
        load_cir_queries(f, tmp_path)
    f.write_text(json.dumps({"id": "d", "reference": "ref.png", "modification": "", "target": ["x.png"]}))
    (q,) = load_cir_queries(f, tmp_path, exclude_reference=False)
    assert q.text == "" and q.meta["targets"] == ["x.png"] and "exclude" not in q.meta
