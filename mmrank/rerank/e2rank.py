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
from mmrank.fusion import Norm, interpolate
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
        max_length: int = 8192,
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
        super().__init__(seed=seed)
        if mode not in ("listwise", "query"):
            raise ValueError(f"mode must be 'listwise' or 'query', got {mode!r}")
        self.prompt = load_prompt("e2rank")
        self.mode = mode
        self.num_input_docs = num_input_docs
        self.doc_words = doc_words
        self.prompt_doc_words = prompt_doc_words if prompt_doc_words is not None else doc_words
        self.task = task or self.prompt.defaults["task"]
        self.fusion = fusion
        self.fusion_weight = fusion_weight
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

    def pseudo_query_text(self, query: str, docs: Sequence[Item]) -> str:
        """The listwise prompt over ``docs`` (chat-templated for a causal LM, plain for an encoder)."""
        lines = [
            self.prompt.render_extra("doc", index=i, text=cut_words(d.full_text, self.prompt_doc_words))
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
        doc_texts = [self.document_text(h.item) for _q, hits in jobs for h in hits]  # type: ignore[arg-type]
        dvec = self._embed_docs(doc_texts) if doc_texts else np.zeros((0, 1), dtype=np.float32)
        if self.mode == "listwise":
            qtexts = [
                self.pseudo_query_text(q.text or "", [h.item for h in hits[: self.num_input_docs]])  # type: ignore[misc]
                for q, hits in jobs
            ]
        else:
            qtexts = [self.query_only_text(q.text or "") for q, _hits in jobs]
        qvec = self._embed_queries(qtexts)
        total_docs = max(len(doc_texts), 1)
        out, at = [], 0
        for j, (_q, hits) in enumerate(jobs):
            n = len(hits)
            s = dvec[at : at + n] @ qvec[j]
            at += n
            fb = []
            if self._too_long(qtexts[j]):
                fb.append(f"{self.name}: {self.mode} query text longer than the embedding window, truncated")
            s = np.asarray(s, dtype=np.float64)
            if self.fusion is not None and n:
                s = interpolate(s, [h.score for h in hits], self.fusion_weight, self.fusion)
            order = sorted(range(n), key=lambda i: -s[i])
            calls = round(self._calls * (n + 1) / (total_docs + len(jobs)))
            out.append(Outcome(order, s.tolist(), calls, fb))
        return out
