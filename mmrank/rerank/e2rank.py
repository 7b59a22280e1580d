"""E2Rank (Liu et al., "E2Rank: Your Text Embedding can Also be an Effective and Efficient Listwise Reranker",
arXiv 2510.22733; code Alibaba-NLP/E2Rank src/eval.py @ 478f298).

* Documents: ``" ".join(doc.split()[:1024]) + "<|endoftext|>"`` embedded with last-token pooling, L2-normalised.
* Pseudo-query: the listwise prompt over the top ``num_input_docs`` (20) first-stage documents, through the chat
  template with the generation prompt (``enable_thinking=False``), no EOS, embedded the same way.
* Score: ``cos(pseudo_query, d_i)`` for every candidate (all top-k reranked at once).
* ``mode="query"``: the embedding-only baseline, ``"Instruct: {task}\\nQuery:{query}<|endoftext|>"`` (for an
  ``encoder=`` the plain query: that template belongs to the E2Rank checkpoints).

Two embedding sides: ``model=`` a causal LM (the paper's E2Rank checkpoints; last-token pooling through
:class:`~mmrank.llm.causal.CausalLM`), or ``encoder=`` any :class:`~mmrank.encoders.base.Encoder` (e.g. MiniLM
through sentence-transformers: "E2Rank-style", without the chat template or EOS marker; a prompt longer than the
encoder's window is truncated by it, and that is recorded as a fallback). ``prompt_doc_words`` caps each document
inside the pseudo-query prompt (default: the same 1024 words).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from mmrank.encoders.base import Encoder, l2_normalise
from mmrank.errors import ContextLengthError
from mmrank.fusion import Norm
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, Reranker
from mmrank.types import Hit, Item, Query


def cut_words(text: str, n: int | None) -> str:
    words = text.split()
    return " ".join(words if n is None else words[:n])


class E2RankReranker(Reranker):
    """Embedding-based listwise reranking with a pseudo-query (arXiv 2510.22733); see the module docstring."""

    name = "e2rank"

    def __init__(
        self,
        model: str | None = None,
        *,
        encoder: Encoder | str | None = None,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 32768,
        batch_size: int = 8,
        mode: Literal["listwise", "query"] = "listwise",
        num_input_docs: int = 20,
        doc_words: int | None = 1024,
        prompt_doc_words: int | None = None,
        task: str | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
        lm: CausalLM | None = None,
    ) -> None:
        super().__init__(seed=seed, fusion=fusion, fusion_weight=fusion_weight)
        if mode not in ("listwise", "query"):
            raise ValueError(f"mode must be 'listwise' or 'query', got {mode!r}")
        self.prompt = load_prompt("e2rank")
        self.mode = mode
        self.num_input_docs = num_input_docs
        self.doc_words = doc_words
        self.prompt_doc_words = prompt_doc_words if prompt_doc_words is not None else doc_words
        self.task = task or self.prompt.defaults["task"]
        self.encoder: Encoder | None = None
        self.lm: CausalLM | None = None
        if isinstance(encoder, str):
            from mmrank.encoders.text import SentenceTransformerEncoder

            encoder = SentenceTransformerEncoder(encoder, device=device, batch_size=max(batch_size, 32))
        if encoder is not None:
            self.encoder = encoder
            self.model_id = getattr(encoder, "model_id", type(encoder).__name__)
        else:
            self.model_id = model or "Alibaba-NLP/E2Rank-0.6B"
            self.lm = lm or get_causal_lm(
                self.model_id,
                gguf_file=gguf_file,
                device=device,
                dtype=dtype,
                max_length=max_length,
                batch_size=batch_size,
            )
        self._calls = 0

    # -- texts ---------------------------------------------------------------------------------------------
    @property
    def eos(self) -> str:
        return self.prompt.defaults["eos"] if self.lm is not None else ""

    def document_text(self, item: Item) -> str:
        return self.prompt.render_extra("document_text", text=cut_words(item.full_text, self.doc_words), eos=self.eos)

    def pseudo_query_text(self, query: str, docs: Sequence[Item], doc_words: int | None = -1) -> str:
        """The listwise prompt over ``docs`` (chat-templated for a causal LM, plain for an encoder), each document cut
        to ``doc_words`` words (default ``prompt_doc_words``)."""
        words = self.prompt_doc_words if doc_words == -1 else doc_words
        lines = [
            self.prompt.render_extra("doc", index=i, text=cut_words(d.full_text, words))
            for i, d in enumerate(docs, start=1)
        ]
        user = self.prompt.render(documents="\n".join(lines), query=query)
        if self.lm is None:
            return user
        return self.lm.chat([{"role": "user", "content": user}], add_generation_prompt=True, enable_thinking=False)

    def query_only_text(self, query: str) -> str:
        """E2Rank's instructed query for a causal LM; an encoder gets the plain query (it adds its own prefix)."""
        if self.lm is None:
            return query
        return self.prompt.render_extra("query_only", task=self.task, query=query, eos=self.eos)

    def _fit_words(self, make: Any, longest: int, what: str) -> tuple[str, str | None]:
        """``make(words)`` with the largest word cap whose token count fits the causal LM's ``max_length``."""
        assert self.lm is not None
        limit = self.lm.max_length
        text = make(None)
        if self.lm.count(text) <= limit:
            return text, None
        lo, hi = 0, longest
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.lm.count(make(mid)) <= limit:
                lo = mid
            else:
                hi = mid - 1
        text = make(lo)
        if self.lm.count(text) > limit:
            raise ContextLengthError(
                f"{self.name}: the {what} does not fit max_length {limit} even with empty documents; raise max_length"
            )
        return text, f"{self.name}: {what} documents cut to {lo} words to fit max_length"

    # -- embeddings ----------------------------------------------------------------------------------------
    def _embed_docs(self, texts: list[str]) -> np.ndarray:
        if self.lm is not None:
            before = self.lm.calls
            v = self.lm.last_hidden_states(texts).numpy()
            self._calls += self.lm.calls - before
            return l2_normalise(v)
        assert self.encoder is not None
        self._calls += max(1, -(-len(texts) // int(getattr(self.encoder, "batch_size", 32))))
        return self.encoder.encode_items([Item(str(i), text=t) for i, t in enumerate(texts)])

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        if self.lm is not None:
            return self._embed_docs(texts)
        assert self.encoder is not None
        self._calls += max(1, -(-len(texts) // int(getattr(self.encoder, "batch_size", 32))))
        return self.encoder.encode_queries([Query(str(i), text=t) for i, t in enumerate(texts)])

    def _too_long(self, text: str) -> bool:
        """Whether ``text`` exceeds the embedding window (so it will be truncated)."""
        if self.lm is not None:
            return len(self.lm.encode(text)) > self.lm.max_length
        model: Any = getattr(self.encoder, "model", None)
        limit = getattr(model, "max_seq_length", None)
        tok = getattr(model, "tokenizer", None)
        return bool(limit and tok is not None and len(tok.encode(text)) > limit)

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        self._calls = 0
        # all documents of all queries in one batched pass (document embeddings are query-independent)
        doc_notes: list[str | None] = []
        doc_texts: list[str] = []
        for _q, hits in jobs:
            for h in hits:
                assert h.item is not None
                if self.lm is None:
                    doc_texts.append(self.document_text(h.item))
                    doc_notes.append(None)
                    continue
                text = h.item.full_text
                dw = self.doc_words

                def make(w: int | None, text: str = text, dw: int | None = dw) -> str:
                    cap = dw if w is None else (w if dw is None else min(w, dw))
                    return self.prompt.render_extra("document_text", text=cut_words(text, cap), eos=self.eos)

                t, note = self._fit_words(make, len(text.split()), "embedded")
                doc_texts.append(t)
                doc_notes.append(note)
        dvec = self._embed_docs(doc_texts) if doc_texts else np.zeros((0, 1), dtype=np.float32)
        qnotes: list[str | None] = [None] * len(jobs)
        if self.mode == "listwise":
            qtexts = []
            for j, (q, hits) in enumerate(jobs):
                top = [h.item for h in hits[: self.num_input_docs] if h.item is not None]
                if self.lm is None:
                    qtexts.append(self.pseudo_query_text(q.text or "", top))
                    continue
                pw = self.prompt_doc_words

                def makeq(w: int | None, q: Query = q, top: list[Item] = top, pw: int | None = pw) -> str:
                    cap = pw if w is None else (w if pw is None else min(w, pw))
                    return self.pseudo_query_text(q.text or "", top, cap)

                longest = max((len(d.full_text.split()) for d in top), default=0)
                text, qnotes[j] = self._fit_words(makeq, longest, "pseudo-query prompt")
                qtexts.append(text)
        else:
            qtexts = [self.query_only_text(q.text or "") for q, _hits in jobs]
        qvec = self._embed_queries(qtexts)
        total_docs = max(len(doc_texts), 1)
        out, at = [], 0
        for j, (_q, hits) in enumerate(jobs):
            n = len(hits)
            s = dvec[at : at + n] @ qvec[j]
            at += n
            fb: list[str] = [n_ for n_ in (qnotes[j],) if n_]
            cut_docs = sum(1 for x in doc_notes[at - n : at] if x)
            if cut_docs:
                fb.append(f"{self.name}: {cut_docs} document(s) cut to fit max_length")
            if self.lm is None and self._too_long(qtexts[j]):
                fb.append(f"{self.name}: {self.mode} query text longer than the embedding window, truncated")
            calls = round(self._calls * (n + 1) / (total_docs + len(jobs)))
            out.append(Outcome(None, np.asarray(s, dtype=np.float64).tolist(), calls, fb))
        return out
