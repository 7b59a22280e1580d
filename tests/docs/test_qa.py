"""Document-page QA end to end with tiny models built from config: the answer is the model's own generation over
the retrieved pages, and the citations are exactly the retrieved pages."""

from __future__ import annotations

import json

import pytest
import torch

from mmrank.cli.main import main as cli
from mmrank.docs import pdf_pages
from mmrank.docs.qa import ask, retrieve_pages
from mmrank.llm.causal import CausalLM
from mmrank.llm.vlm import VLM
from mmrank.prompts import load_prompt
from mmrank.retrieve.bm25 import BM25Retriever
from mmrank.types import Corpus, Query
from tests.docs.pdfs import text_pdf
from tests.tiny_text import save_tiny_qwen
from tests.tiny_vlm import save_tiny_qwen2_vl

torch.set_num_threads(1)
QUESTION = "Which region had revenue growth?"


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    return text_pdf(tmp_path_factory.mktemp("qa") / "report.pdf")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return save_tiny_qwen(tmp_path_factory.mktemp("lm"))


def test_text_llm_answer_is_its_generation_over_the_retrieved_pages(pdf, lm_dir, tmp_path):
    pages = pdf_pages(pdf).items
    lm = CausalLM(str(lm_dir), device="cpu")
    ans = ask(QUESTION, pages, lm=lm, k=2, thumbnails=tmp_path / "th")
    q = Query("q", text=QUESTION)
    expected_hits = BM25Retriever().index(Corpus(pages)).retrieve([q], k=2)[q.id].hits
    assert [(c.doc_id, c.page) for c in ans.citations] == [
        (h.item.page.doc_id, h.item.page.page) for h in expected_hits
    ]
    assert ans.citations[0].page == 1  # the page about revenue
    assert all(c.thumbnail and (tmp_path / "th" / c.thumbnail.split("/")[-1]).is_file() for c in ans.citations)
    p = load_prompt("page-qa")
    body = "\n".join(
        p.render_extra("page", page=h.item.page.page, doc="report.pdf", text=h.item.text) for h in expected_hits
    )
    chat = lm.chat(p.messages(pages=body, question=QUESTION))
    assert ans.text == lm.generate([chat], max_new_tokens=48)[0].strip()
    assert not ans.fallbacks


def test_page_texts_are_cut_to_fit_the_context_and_recorded(pdf, lm_dir):
    pages = pdf_pages(pdf).items
    long_pages = [type(it)(it.id, text=it.text * 40, image=it.image, page=it.page) for it in pages]
    lm = CausalLM(str(lm_dir), device="cpu", max_length=400)
    ans = ask(QUESTION, long_pages, lm=lm, k=3)
    assert ans.fallbacks and "cut" in ans.fallbacks[0]


def test_vlm_answers_from_page_images(pdf, tmp_path):
    vlm = VLM(str(save_tiny_qwen2_vl(tmp_path / "vlm")), device="cpu")
    pages = pdf_pages(pdf, dpi=20).items
    ans = ask(QUESTION, pages, lm=vlm, k=1)
    hit = retrieve_pages(QUESTION, pages, k=1)[0]
    p = load_prompt("page-qa")
    conv = [
        {"role": "system", "content": p.system},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[Page 1 of report.pdf]"},
                {"type": "image", "image": hit.item.load_image()},
                {"type": "text", "text": f"\n\nQuestion: {QUESTION}\nShort answer:"},
            ],
        },
    ]
    assert ans.text == vlm.generate([conv], max_new_tokens=48)[0].strip()
    assert [(c.doc_id, c.page) for c in ans.citations] == [("report.pdf", 1)]


def test_cli_ask_json(pdf, lm_dir, capsys):
    assert cli(["ask", str(pdf), QUESTION, "--model", str(lm_dir), "--k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["citations"][0]["page"] == 1 and out["question"] == QUESTION and isinstance(out["answer"], str)
    assert cli(["ask", str(pdf), "  ", "--model", str(lm_dir)]) == 2  # an empty question is a typed error


def test_batch_script_answers_a_questions_file_and_resumes(pdf, lm_dir, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    qs = tmp_path / "q.jsonl"
    qs.write_text('{"id": "a", "question": "Which region had revenue growth?"}\n{"id": "b", "question": "   "}\n')
    out = tmp_path / "answers.jsonl"
    cmd = [sys.executable, str(root / "text" / "ask_pdfs.py"), "--pdfs", str(pdf), "--questions", str(qs)]
    cmd += ["--model", str(lm_dir), "--out", str(out), "--k", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert r.returncode != 0 and "empty" in r.stderr  # the blank question is a typed error, after "a" was written
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["id"] for x in first] == ["a"] and first[0]["citations"][0]["page"] == 1
    qs.write_text('{"id": "a", "question": "Which region had revenue growth?"}\n{"id": "c", "question": "Terns?"}\n')
    assert subprocess.run(cmd, capture_output=True, text=True, cwd=root).returncode == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "c"]  # "a" not redone
