"""Shared plumbing of the generative text rerankers (listwise, setwise, groupwise).

The LLM is injected: pass ``model=`` (hub id or local path, loaded once through
:func:`mmrank.llm.causal.get_causal_lm`) or ``lm=`` any object with ``chat(messages) -> str`` and
``generate(prompts, max_new_tokens=, temperature=, top_p=, seed=) -> list[str]`` (and, optionally, a
``tokenizer`` for token-based truncation). ``model_calls`` in the results count generations: one per
prompt sent for that query.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mmrank.errors import ContextLengthError, DataFormatError
from mmrank.fusion import Norm
from mmrank.rerank.base import Reranker
from mmrank.types import Hit, Item, Query


class ChatLLM(Protocol):
    """What a generative reranker needs from a model backend (``mmrank.llm.causal.CausalLM`` fits)."""

    def chat(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True) -> str: ...

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[str]: ...


def query_text(q: Query) -> str:
    if not q.text or not q.text.strip():
        raise DataFormatError(f"query {q.id!r} has no text; generative text rerankers need text queries")
    return q.text


def item_text(item: Item | None, *, style: str = "title-content") -> str:
    """A passage's text for a prompt: ``"Title: {t} Content: {x}"`` (RankGPT / ReasonRank) when the item
    has a title and ``style="title-content"``, ``"{t} {x}"`` for ``style="plain"``; whitespace collapsed."""
    if item is None or not (item.text or item.title):
        rid = getattr(item, "id", "?")
        raise DataFormatError(f"item {rid!r} has no text; generative text rerankers need text items")
    text = item.text or ""
    if item.title and style == "title-content":
        text = f"Title: {item.title} Content: {text}"
    elif item.title:
        text = f"{item.title} {text}"
    return " ".join(text.split())


def truncate_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def truncate_tokens(text: str, n: int, tokenizer: Any | None) -> str:
    """First ``n`` tokenizer tokens of ``text`` (as the official ReasonRank / Rank-R1 code does);
    whitespace words when no tokenizer is available (e.g. an injected test LLM)."""
    if tokenizer is None:
        return truncate_words(text, n)
    toks = tokenizer.tokenize(text)
    if len(toks) <= n:
        return text
    return tokenizer.convert_tokens_to_string(toks[:n]).strip()


def bracket_numbers_to_parens(s: str) -> str:
    """``[3]`` -> ``(3)``, as ReasonRank does to queries and passages so they cannot mimic identifiers."""
    return re.sub(r"\[(\d+)\]", r"(\1)", s)


def query_rng(seed: int, q: Query, salt: str = "") -> random.Random:
    """A random generator that depends only on (seed, query id, salt): results do not depend on batching."""
    return random.Random(f"{seed}|{q.id}|{salt}")


class GenerativeReranker(Reranker):
    """Base of rerankers that prompt a chat LLM and parse its text."""

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: ChatLLM | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 4096,
        batch_size: int = 8,
        gguf_file: str | None = None,
        seed: int = 0,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
    ) -> None:
        super().__init__(seed=seed, fusion=fusion, fusion_weight=fusion_weight)
        if (model is None) == (lm is None):
            raise ValueError("give exactly one of model= (hub id or path) or lm= (a loaded backend)")
        self._lm = lm
        self._model = model
        self._lm_kw: dict[str, Any] = {
            "device": device,
            "dtype": dtype,
            "max_length": max_length,
            "batch_size": batch_size,
        }
        if gguf_file is not None:
            self._lm_kw["gguf_file"] = gguf_file

    @property
    def lm(self) -> ChatLLM:
        if self._lm is None:
            from mmrank.llm.causal import get_causal_lm

            self._lm = get_causal_lm(str(self._model), **self._lm_kw)
        return self._lm

    @property
    def tokenizer(self) -> Any | None:
        return getattr(self.lm, "tokenizer", None)

    def _complete(
        self,
        conversations: Sequence[list[dict[str, Any]]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> list[str]:
        """Apply the chat template to every conversation and generate all of them in one batched call."""
        if not conversations:
            return []
        prompts = [self.lm.chat(c) for c in conversations]
        outs = self.lm.generate(
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=self.seed
        )
        outs = list(outs)
        if len(outs) != len(prompts):
            raise RuntimeError(f"{self.name}: backend returned {len(outs)} outputs for {len(prompts)} prompts")
        return outs

    def fit_documents(
        self,
        build: Callable[[list[str]], list[dict[str, Any]]],
        docs: list[str],
        *,
        reserve: int,
        cut: Callable[[str, int], str],
        size: Callable[[str], int],
        unit: str,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The conversation ``build(docs)``, with every document cut to one common length (the largest that fits,
        found by bisection) when the templated prompt plus ``reserve`` new tokens exceeds the backend's
        ``max_length``; and the note to record. Instructions and query are never cut: when even empty documents do
        not fit, :class:`ContextLengthError` is raised. Backends without ``max_length`` / tokenizer are not checked.
        """
        msgs = build(docs)
        limit = getattr(self.lm, "max_length", None)
        tok = self.tokenizer
        if limit is None or tok is None:
            return msgs, None
        limit -= reserve

        def count(m: list[dict[str, Any]]) -> int:
            return len(tok.encode(self.lm.chat(m), add_special_tokens=False))

        if count(msgs) <= limit:
            return msgs, None
        lo, hi = 0, max((size(d) for d in docs), default=0)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(build([cut(d, mid) for d in docs])) <= limit:
                lo = mid
            else:
                hi = mid - 1
        msgs = build([cut(d, lo) for d in docs])
        if count(msgs) > limit:
            raise ContextLengthError(
                f"{self.name}: a prompt of {len(docs)} empty documents needs {count(msgs)} tokens > max_length "
                f"{limit + reserve} - {reserve} new tokens; raise max_length"
            )
        return msgs, f"documents cut to {lo} {unit} to fit max_length"

    @staticmethod
    def _texts(hits: Sequence[Hit], style: str = "title-content") -> list[str]:
        return [item_text(h.item, style=style) for h in hits]
