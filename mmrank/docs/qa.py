"""Document-page QA: retrieve the pages a question needs, then answer from them with a text LLM (over the pages'
text) or a vision-language model (over the page images), returning the answer and the cited pages.

    from mmrank.docs import pdf_pages
    from mmrank.docs.qa import ask
    pages = pdf_pages("report.pdf").items
    ans = ask("What was the revenue growth?", pages, lm="path/to/qwen2.5-0.5b-instruct")
    ans.text, [(c.doc_id, c.page, c.score) for c in ans.citations]

The prompt (``mmrank/prompts/page_qa.yaml``) follows MMLongBench-Doc's answer conventions (short answer, "Not
answerable"). Page texts are cut, longest first, to fit the model's context; a cut is recorded in ``fallbacks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError
from mmrank.prompts import load_prompt
from mmrank.types import Corpus, Hit, Item, Query


@dataclass(frozen=True)
class Citation:
    doc_id: str
    page: int
    score: float
    thumbnail: str | None = None


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    model: str = ""
    fallbacks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.__dict__ for c in self.citations],
            "model": self.model,
            "fallbacks": self.fallbacks,
        }


def retrieve_pages(question: str, pages: Sequence[Item], *, k: int = 3, retriever: Any = "bm25") -> list[Hit]:
    """The top-``k`` pages for ``question`` with any retriever of the library (default BM25 over page text)."""
    from mmrank import registry

    if not question or not question.strip():
        raise DataFormatError("the question is empty")
    if not pages:
        raise DataFormatError("no pages to answer from")
    r = registry.retriever(retriever) if isinstance(retriever, str) else retriever
    r.index(Corpus(list(pages)))
    q = Query("q", text=question)
    return list(r.retrieve([q], k=k)[q.id].hits)


def _thumbnail(item: Item, directory: Path | None) -> str | None:
    if directory is None or item.image is None or item.page is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in item.page.doc_id)
    path = directory / f"{safe}-p{item.page.page}.jpg"
    if not path.exists():
        img = item.load_image()
        img.thumbnail((256, 256))
        img.save(path, quality=85)
    return str(path)


def answer_from_pages(
    question: str,
    hits: Sequence[Hit],
    lm: Any,
    *,
    max_page_chars: int | None = None,
    thumbnails: str | Path | None = None,
    max_new_tokens: int | None = None,
) -> Answer:
    """Answer ``question`` from the retrieved pages ``hits`` with ``lm``: a :class:`~mmrank.llm.vlm.VLM` reads the
    page images, a :class:`~mmrank.llm.causal.CausalLM` the page texts."""
    from mmrank.llm.vlm import VLM

    prompt = load_prompt("page-qa")
    new_tokens = int(max_new_tokens or prompt.defaults.get("max_new_tokens", 48))
    fallbacks: list[str] = []
    items = [h.item for h in hits if h.item is not None]
    if not items:
        raise DataFormatError("the retrieved hits carry no page items")
    if isinstance(lm, VLM):
        content: list[dict[str, Any]] = []
        for it in items:
            label = prompt.render_extra("image_page", page=it.page.page if it.page else "?", doc=_doc(it))
            content += [{"type": "text", "text": label}, {"type": "image", "image": it}]
        content.append({"type": "text", "text": f"\n\nQuestion: {question}\nShort answer:"})
        conv: list[dict[str, Any]] = [
            {"role": "system", "content": prompt.system or ""},
            {"role": "user", "content": content},
        ]
        text = lm.generate([conv], max_new_tokens=new_tokens)[0]
        name = lm.name
    else:
        texts = [it.text or "" for it in items]
        if max_page_chars is not None:
            texts = [t[:max_page_chars] for t in texts]
        text_prompt, cut = _fit(lm, prompt, question, items, texts, new_tokens)
        if cut:
            fallbacks.append(f"page texts cut to {cut} characters each to fit the context")
        text = lm.generate([text_prompt], max_new_tokens=new_tokens)[0]
        name = getattr(lm, "name", str(lm))
    th = Path(thumbnails) if thumbnails is not None else None
    cites = [
        Citation(_doc(h.item), h.item.page.page if h.item.page else 0, float(h.score), _thumbnail(h.item, th))
        for h in hits
        if h.item is not None
    ]
    return Answer(question, text.strip(), cites, name, fallbacks)


def _doc(it: Item) -> str:
    return it.page.doc_id if it.page else it.id


def _fit(
    lm: Any, prompt: Any, question: str, items: Sequence[Item], texts: list[str], new_tokens: int
) -> tuple[str, int]:
    """The chat prompt with page texts cut (all to one length, halving) until it fits ``lm.max_length``."""
    limit = int(getattr(lm, "max_length", 0) or 0)
    cut = 0
    while True:
        body = "\n".join(
            prompt.render_extra("page", page=it.page.page if it.page else "?", doc=_doc(it), text=t)
            for it, t in zip(items, texts, strict=True)
        )
        msgs = prompt.messages(pages=body, question=question)
        chat = lm.chat(msgs)
        if not limit or len(lm.tokenizer(chat)["input_ids"]) + new_tokens <= limit:
            return chat, cut
        longest = max(len(t) for t in texts)
        if longest == 0:
            from mmrank.errors import ContextLengthError

            raise ContextLengthError(f"the question alone does not fit {limit} tokens")
        cut = longest // 2
        texts = [t[:cut] for t in texts]


def ask(
    question: str,
    pages: Sequence[Item],
    *,
    lm: Any,
    k: int = 3,
    retriever: Any = "bm25",
    thumbnails: str | Path | None = None,
    **kw: Any,
) -> Answer:
    """Retrieve the top-``k`` pages, then answer from them (``lm``: a loaded backend or a model path / hub id)."""
    if isinstance(lm, str):
        lm = load_answerer(lm)
    hits = retrieve_pages(question, pages, k=k, retriever=retriever)
    if not hits:
        return Answer(question, "Not answerable", [], getattr(lm, "name", ""), ["no page matched the question"])
    return answer_from_pages(question, hits, lm, thumbnails=thumbnails, **kw)


def load_answerer(model: str, **kw: Any) -> Any:
    """A VLM when the model is a vision-language model (from its config), else a causal LM."""
    from mmrank.llm.vlm import get_vlm, is_vlm

    if is_vlm(model):
        return get_vlm(model, **kw)
    from mmrank.llm.causal import get_causal_lm

    return get_causal_lm(model, **kw)
