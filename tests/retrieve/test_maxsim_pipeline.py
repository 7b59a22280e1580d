"""Late-interaction first stage end to end with tiny models: retriever, MM-R5 paper preset with page recall,
ColPali followed by another reranker, the folder index through open_index and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmrank.cli.main import main
from mmrank.collection import open_index
from mmrank.index.maxsim import maxsim_naive
from mmrank.pipeline import Pipeline
from mmrank.retrieve.maxsim import MaxSimCollection, MaxSimRetriever
from mmrank.retrieve.presets import mm_r5_paper, page_recall
from mmrank.types import Corpus, Item, PageRef, Query
from tests.tiny_colvision import save_tiny_colpali, save_tiny_colqwen2
from tests.tiny_vlm import colour_image, save_tiny_qwen2_5_vl

torch.set_num_threads(1)
COLOURS = ["red", "blue", "green", "white", "black", "yellow"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("m")
    return {
        "colqwen2": str(save_tiny_colqwen2(root / "cq")),
        "colpali": str(save_tiny_colpali(root / "cp")),
        "vlm": str(save_tiny_qwen2_5_vl(root / "vlm")),
    }


def page_corpus(tmp_path):
    items = []
    for n, c in enumerate(COLOURS):
        p = tmp_path / f"{c}.png"
        colour_image(c, (28 + 7 * n, 28)).save(p)
        items.append(Item(f"doc{n % 2}-p{n // 2 + 1}", image=str(p), page=PageRef(f"doc{n % 2}", n // 2 + 1)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    items.append(Item("doc1-p9", image=str(broken), page=PageRef("doc1", 9)))
    return Corpus(items)


def test_retriever_scores_within_doc_and_failed_pages(models, tmp_path):
    corpus = page_corpus(tmp_path)
    r = MaxSimRetriever("colqwen2", model=models["colqwen2"], batch_size=3, within_doc=True).index(corpus)
    queries = [Query("q0", text="a red page"), Query("q1", text="blue chart", meta={"doc_id": "doc1"})]
    run = r.retrieve(queries, k=10)
    assert len(run["q0"]) == 6 and "doc1-p9" not in run["q0"].ids  # the broken page is skipped, and recorded
    assert run["q0"].fallbacks == ["colqwen2: 1 items not indexed (image failed to load)"]
    qm = r.encoder.encode_queries(queries)
    for h in run["q0"]:
        ref = maxsim_naive(qm[0], r.index_obj.matrix(r.index_obj.ids.index(h.id)).astype(np.float32))
        assert h.score == pytest.approx(ref, rel=1e-5)
    assert run["q0"].scores == sorted(run["q0"].scores, reverse=True)
    assert {h.item.page.doc_id for h in run["q1"]} == {"doc1"} and len(run["q1"]) == 3  # MMDocIR: own document


def test_mm_r5_paper_preset_and_page_recall(models, tmp_path):
    corpus = page_corpus(tmp_path)
    pipe = mm_r5_paper(
        retriever_model=models["colqwen2"],
        reranker_model=models["vlm"],
        k=3,
        rerank_top=3,
        reranker_kwargs={"max_new_tokens": 8},
    )
    queries = [Query("q0", text="red", meta={"doc_id": "doc0"}), Query("q1", text="blue", meta={"doc_id": "doc1"})]
    runs = pipe.index(corpus).run(queries, return_all=True)
    assert isinstance(runs, list) and len(runs) == 2
    first, final = runs
    for q in queries:
        assert sorted(final[q.id].ids) == sorted(first[q.id].ids)  # MM-R5 permutes the ColQwen2 top-3
        assert final[q.id].model_calls == 1
    qrels = {"q0": {first["q0"].ids[1]: 1, "doc0-p9": 1}, "q1": {first["q1"].ids[0]: 1}}
    rec = page_recall(first, qrels, {"q0": "doc0", "q1": "doc1"}, ks=(1, 3))
    # by hand: q0 has 2 relevant pages, its 2nd-ranked page is one; q1's top page is relevant
    assert rec["micro_recall@1"] == pytest.approx((0 + 1) / 2)
    assert rec["micro_recall@3"] == pytest.approx((0.5 + 1) / 2)
    assert rec["macro_recall@3"] == pytest.approx((0.5 + 1) / 2)
    assert set(page_recall(final, qrels, {"q0": "d", "q1": "d"})) >= {"macro_recall@5", "micro_recall@5"}
    one_doc = page_recall(first, qrels, {"q0": "d", "q1": "d"}, ks=(3,))
    assert one_doc["macro_recall@3"] == pytest.approx(one_doc["micro_recall@3"])


def test_colpali_then_any_reranker_as_a_stage(models, tmp_path):
    from mmrank.rerank.vlm_pointwise import VLMYesNoReranker

    corpus = page_corpus(tmp_path)
    pipe = Pipeline(
        MaxSimRetriever("colpali", model=models["colpali"]),
        [(VLMYesNoReranker(models["vlm"], device="cpu"), 4)],
        k=5,
    )
    run = pipe.index(corpus).run([Query("q", text="a green page")])
    assert len(run["q"]) == 5 and run["q"].stage.startswith("vlm")


def test_folder_index_cli_and_open_index(models, tmp_path, capsys):
    folder = tmp_path / "pages"
    folder.mkdir()
    for c in COLOURS[:4]:
        colour_image(c, (40, 28)).save(folder / f"report_page-{COLOURS.index(c) + 1}.png")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "idx"
    argv = ["index", str(folder), "--encoder", "colqwen2", "--model", models["colqwen2"], "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["indexed"] == 4 and len(rep["skipped"]) == 1
    coll = open_index(out)
    assert isinstance(coll, MaxSimCollection) and coll.kind == "maxsim"
    ranking = coll.search("a red page", 3)
    assert len(ranking) == 3 and ranking.hits[0].item.page is not None
    assert main(["search", str(out), "--text", "a red page", "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["id"] for h in hits] == ranking.ids
    assert main(["search", str(out), "--text", "a red page", "-k", "3", "--json", "--approximate"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == ranking.ids  # 4 pages: full recall
    capped = ["search", str(out), "--text", "a red page", "-k", "3", "--json", "--approximate", "--max-candidates", "1"]
    assert main(capped) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 1  # the cap bounds the pages scored exactly
    assert main(["search", str(out), "--image", str(folder / "empty.png")]) == 2
    from mmrank.encoders.multivector import ColPaliEncoder
    from mmrank.errors import DataFormatError

    with pytest.raises(DataFormatError, match="does not match"):  # a second model cannot query this index
        MaxSimCollection(out, encoder=ColPaliEncoder(models["colpali"]))
    assert main([*argv[:-2], "--out", str(tmp_path / "idx2"), "--model", str(tmp_path / "missing")]) == 2
    # pooled index is smaller
    assert main([*argv[:-1], str(tmp_path / "pooled"), "--pool-factor", "2", "--json"]) == 0
    pooled = json.loads(capsys.readouterr().out)
    assert pooled["bytes_per_page"] < rep["bytes_per_page"]


def test_pdf_folder_pages_are_rendered_indexed_and_reopened(models, tmp_path, capsys):
    from tests.docs.pdfs import text_pdf

    folder = tmp_path / "pdfs"
    folder.mkdir()
    text_pdf(folder / "report.pdf", ["Revenue grew in the north.", "Costs fell in the south."])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    out = tmp_path / "pdf.idx"
    argv = ["index", str(folder), "--encoder", "colqwen2", "--model", models["colqwen2"], "--out", str(out), "--json"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["indexed"] == 2 and any("broken.pdf" in w for w in rep["skipped"])
    coll = open_index(out)
    ranking = coll.search("revenue", 2)
    assert sorted(ranking.ids) == ["report.pdf#1", "report.pdf#2"]
    item = coll.item("report.pdf#2")
    assert item.page == PageRef("report.pdf", 2) and item.load_image().width > 0  # rendered again on demand
