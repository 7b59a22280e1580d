"""The documents part of ``mmrank demo``: the bundled 4-page sample report (three text pages and a scanned page read
by OCR), searched page by page with BM25 + MiniLM hybrid fusion (real offline models). Answers need a language
model: ``mmrank demo --qa-model <LLM or VLM>`` answers the two questions from the retrieved pages (as
``mmrank ask <pdf> "question" --model ...`` does), citing them."""

from __future__ import annotations

QUESTIONS = ("How much budget was approved?", "How many engineers will be hired?")


def run_pdf_demo(k: int = 2, qa_model: str | None = None) -> list[str]:
    """The demo's lines; with ``qa_model`` (hub id or local folder of a text LLM or VLM) each question also gets the
    model's answer from its top ``k`` pages."""
    from mmrank import registry
    from mmrank.docs import pdf_pages, sample_pdf
    from mmrank.types import Corpus, Query

    lm = None
    if qa_model is not None:
        from mmrank.docs.qa import answer_from_pages, load_answerer

        lm = load_answerer(qa_model)
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
        if lm is not None:
            ans = answer_from_pages(q, run[f"q{i}"].hits, lm, max_new_tokens=48)
            cited = ", ".join(f"p.{c.page}" for c in ans.citations)
            lines.append(f"  A ({ans.model}): {' '.join(ans.text.split())[:160]}  [cited: {cited}]")
            lines += [f"  (fallback: {f})" for f in ans.fallbacks]
    if lm is None:
        lines.append("(answers with cited pages: mmrank demo --qa-model <LLM or VLM>, or mmrank ask <pdf> ...)")
    return lines
