"""MMDocIR loader on a tiny set written in the published schema (pages parquet + annotations JSONL)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from mmrank.docs.bench import run_page_retrieval
from mmrank.docs.mmdocir import load_mmdocir
from mmrank.errors import DataFormatError
from mmrank.retrieve.presets import page_recall
from mmrank.types import Run

PAGES = [  # (doc_name, vlm_text, ocr_text)
    ("a.pdf", "cover page of the annual report", "ANNUAL REPORT"),
    ("a.pdf", "a bar chart of revenue growth by region", "Revenue 12%"),
    ("a.pdf", "a table of staff numbers", "Staff 40"),
    ("b.pdf", "slide about arctic tern migration", "Terns"),
    ("b.pdf", "slide about penguin colonies", "Penguins"),
]


def _jpeg(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), colour).save(buf, format="JPEG")
    return buf.getvalue()


def write_set(root, page_indices=((0, 2), (3, 4)), page_ids=([1], [0])):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    rows = {
        "doc_name": [p[0] for p in PAGES],
        "domain": ["report"] * 3 + ["slides"] * 2,
        "passage_id": [str(i) for i in range(len(PAGES))],
        "image_path": [f"img/{i}.jpg" for i in range(len(PAGES))],
        "image_binary": [_jpeg(c) for c in ("red", "green", "blue", "white", "black")],
        "ocr_text": [p[2] for p in PAGES],
        "vlm_text": [p[1] for p in PAGES],
    }
    pq.write_table(pa.table(rows), root / "MMDocIR_pages.parquet")
    docs = [
        {
            "doc_name": "a.pdf",
            "domain": "report",
            "page_indices": list(page_indices[0]),
            "questions": [
                {"Q": "How did revenue grow by region?", "A": "12%", "page_id": page_ids[0], "type": "['Chart']"}
            ],
        },
        {
            "doc_name": "b.pdf",
            "domain": "slides",
            "page_indices": list(page_indices[1]),
            "questions": [
                {"Q": "Where do arctic terns migrate?", "A": "poles", "page_id": page_ids[1], "type": "['Text']"},
                {"Q": "unanswerable", "A": "-", "page_id": [], "type": "[]"},
            ],
        },
    ]
    (root / "MMDocIR_annotations.jsonl").write_text("\n".join(json.dumps(x) for x in docs) + "\n")
    return root


def test_pages_questions_and_zero_based_evidence(tmp_path):
    bench = load_mmdocir(write_set(tmp_path / "mmdocir"), images=True)
    assert [it.id for it in bench.pages] == ["a.pdf#1", "a.pdf#2", "a.pdf#3", "b.pdf#1", "b.pdf#2"]
    assert bench.pages[1].text == PAGES[1][1] and bench.pages[1].page.page == 2
    assert bench.pages[2].load_image().getpixel((5, 5))[2] > 200  # blue page, from the parquet's JPEG bytes
    assert bench.qrels == {"1-0": {"a.pdf#2": 1}, "2-0": {"b.pdf#1": 1}}  # page_id 1 (0-based) is page 2
    assert [q.meta["doc_id"] for q in bench.queries] == ["a.pdf", "b.pdf"]  # the question without evidence is left out
    ocr = load_mmdocir(tmp_path / "mmdocir", text="ocr_text")
    assert ocr.pages[1].text == "Revenue 12%" and ocr.pages[1].image is None


def test_retrieval_and_mmdocir_recall(tmp_path):
    bench = load_mmdocir(write_set(tmp_path / "mmdocir"))
    res = run_page_retrieval(bench, methods=["bm25"])
    assert res["bm25"]["in_document"]["recall@1"] == 1.0 and res["bm25"]["queries"] == 2
    from mmrank.retrieve.bm25 import BM25Retriever
    from mmrank.types import Corpus

    run = Run(BM25Retriever().index(Corpus(bench.pages)).retrieve(bench.queries, k=5).values())
    rec = page_recall(run, bench.qrels, {q.id: q.meta["doc_id"] for q in bench.queries}, ks=(1,))
    assert rec == {"micro_recall@1": 1.0, "macro_recall@1": 1.0}


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"page_indices": ((0, 3), (3, 4))}, "point at"), ({"page_ids": ([3], [0])}, "outside the document")],
)
def test_inconsistent_annotations_are_named(tmp_path, kw, match):
    with pytest.raises(DataFormatError, match=match):
        load_mmdocir(write_set(tmp_path / "bad", **kw))


def test_missing_files(tmp_path):
    with pytest.raises(DataFormatError, match=r"MMDocIR_pages\.parquet"):
        load_mmdocir(tmp_path)


def test_llm_reranking_methods_keep_the_candidates(tmp_path):
    from tests.tiny_text import save_tiny_qwen

    bench = load_mmdocir(write_set(tmp_path / "mmdocir"))
    with pytest.raises(DataFormatError, match="needs a causal LM"):
        run_page_retrieval(bench, methods=["hybrid+ql"])
    with pytest.raises(DataFormatError, match="settings"):
        run_page_retrieval(bench, methods=["hybrid"], settings=["everywhere"])
    lm = str(save_tiny_qwen(tmp_path / "lm"))
    methods = ["hybrid", "hybrid+ql", "hybrid+yes-no", "hybrid+mm-r5"]
    res = run_page_retrieval(
        bench, methods=methods, model=lm, reranker_kw={"hybrid+mm-r5": {"max_new_tokens": 8, "max_length": 4096}}
    )
    for m in methods[1:]:
        for s in ("in_document", "collection"):  # a random tiny LM reorders, but recall@5 over 2-3 pages cannot drop
            assert res[m][s]["recall@5"] == res["hybrid"][s]["recall@5"] == 1.0
    # 8 new tokens of a random LM hold no answer tag: MM-R5 keeps the hybrid order and says so, per query
    assert res["hybrid+mm-r5"]["in_document"] == res["hybrid"]["in_document"]
    notes = res["hybrid+mm-r5"]["fallbacks"]
    assert sum(n for key, n in notes.items() if "no <answer>" in key) == 2 * len(bench.qrels)
    assert all(key.startswith(("in_document: mm-r5 window N-N", "collection: mm-r5 window N-N")) for key in notes)
    only = run_page_retrieval(bench, methods=["hybrid+yes-no"], model=lm, settings=["in_document"])
    assert set(only["hybrid+yes-no"]) == {"in_document", "queries"}
    assert only["hybrid+yes-no"]["in_document"] == res["hybrid+yes-no"]["in_document"]
