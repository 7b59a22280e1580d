"""The documents part of ``mmrank demo``: the bundled 4-page sample report (three text pages and a scanned page read
by OCR), searched page by page with BM25 + MiniLM hybrid fusion (real offline models). Answers need a language
model: ``mmrank ask <pdf> "question" --model <LLM or VLM>`` adds them, with the same cited pages."""

from __future__ import annotations

QUESTIONS = ("How much budget was approved?", "How many engineers will be hired?")


def run_pdf_demo(k: int = 2) -> list[str]:
    from mmrank import registry
    from mmrank.docs import pdf_pages, sample_pdf
    from mmrank.types import Corpus, Query

    pages = pdf_pages(sample_pdf())
    lines = [f"PDF pages: {sample_pdf().name}, {len(pages.items)} pages"]
    lines += [f"  page {it.page.page}: text from {it.meta['text_source']}" for it in pages.items if it.page]
    hybrid = registry.retriever("hybrid").index(Corpus(pages.items))
    run = hybrid.retrieve([Query(f"q{i}", text=q) for i, q in enumerate(QUESTIONS)], k=k)
    for i, q in enumerate(QUESTIONS):
        lines.append(f"Q: {q}")
        for h in run[f"q{i}"].hits:
            text = (h.item.text or "").strip().splitlines() if h.item else []
            gist = text[1] if len(text) > 1 else (text[0] if text else "")  # the line under the page heading
            lines.append(f"  p.{h.item.page.page if h.item and h.item.page else '?'}  {h.score:.3f}  {gist[:70]}")
    lines.append('(answers with cited pages: mmrank ask <pdf> "question" --model <LLM or VLM>)')
    return lines
