"""ERank (Cai et al., arXiv 2509.00520): pointwise 0-10 integer relevance by generation.

The model writes ``<think> ... </think><answer> s </answer>`` for each pair (prompt: paper Fig. 5). The ranking
score is ``s x Pr(s)``, the integer times the probability with which it was generated (the paper's definition;
*not* the expectation over 0..10). When ``s`` spans several tokens (``"10"`` is two digit tokens for Qwen),
``Pr(s)`` is the product of their probabilities [gap: the paper does not say; documented choice].

Lengths: queries and documents are cut to 2,048 tokens each (paper) and up to 1,024 new tokens are generated, so the
default ``max_length`` is 8192 (2048 + 2048 + template + 1024 fits; the models' own context is 32K) [gap: the official
inference code is not public; this is the smallest power of two that fits the paper's budget]. A longer prompt has its
document cut further, recorded as a fallback.

``think=False`` (a budget mode for small models / CPUs, not the paper's setting) pre-fills the assistant turn with
``"<think> </think><answer>"`` so the model writes the integer at once. A missing or out-of-range answer scores 0
and is recorded as a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from mmrank.llm.causal import Generation
from mmrank.prompts import load_prompt
from mmrank.rerank.parsing import bounded_int
from mmrank.rerank.pointwise import LLMPointwiseReranker, doc_text
from mmrank.types import Item, Query


@dataclass(slots=True)
class ParsedScore:
    value: int | None  # the integer in <answer>, None when absent or out of range
    span: tuple[int, int] | None  # character span of the integer in the parsed text
    note: str | None = None


def parse_answer(text: str | None, lo: int = 0, hi: int = 10, pattern: re.Pattern[str] | None = None) -> ParsedScore:
    """The last ``<answer> int </answer>`` in ``text`` (``pattern``: the prompt's ``output_regex``, linear-time).

    An answer cut off after the integer (``<answer> 7`` or ``<answer>7</ans``) also counts; ``<answer>1 0</answer>``
    or ``<answer>seven`` do not. The integer is written in decimal digits (``str.isdecimal``: ``"07"`` is 7, ``"３"``
    is 3; ``"²"`` is not a digit); any number of digits is read without conversion limits (``"0" * 5000 + "7"`` is 7,
    a 5,000-digit number is out of range). Never raises.
    """
    pat = pattern if pattern is not None else load_prompt("erank").regex()
    last = None
    for m in pat.finditer(text or ""):
        last = m
    if last is None:
        return ParsedScore(None, None, "no integer <answer>, scored 0")
    v = bounded_int(last.group(1), hi)
    if v is None or v < lo:
        return ParsedScore(None, None, f"answer outside {lo}-{hi}, scored 0")
    return ParsedScore(v, last.span(1))


def token_char_ends(tokenizer: Any, token_ids: Sequence[int]) -> list[int]:
    """Character length of the decoded text after each token (prefix decoding: safe for byte-level BPE)."""
    return [len(tokenizer.decode(list(token_ids[: i + 1]), skip_special_tokens=True)) for i in range(len(token_ids))]


def answer_probability(gen: Generation, tokenizer: Any, span: tuple[int, int], offset: int = 0) -> float:
    """Probability of the tokens that spell ``text[span]``, where ``text = prefill + gen.text`` and
    ``offset = len(prefill)``: the product over generated tokens overlapping the span."""
    start, end = span[0] - offset, span[1] - offset
    ends = token_char_ends(tokenizer, gen.token_ids)
    lp, prev = 0.0, 0
    for e, tok_lp in zip(ends, gen.logprobs, strict=True):
        if e > start and prev < end:
            lp += tok_lp
        prev = e
    return float(np.exp(lp))


class ERankReranker(LLMPointwiseReranker):
    """ERank 0-10 generative pointwise reranker (arXiv 2509.00520); score ``s x Pr(s)``."""

    name = "erank"
    prompt_name = "erank"
    default_model = "Alibaba-NLP/ERank-4B"

    def __init__(
        self,
        model: str | None = None,
        *,
        instruction: str | None = None,
        think: bool = True,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        max_doc_tokens: int | None = 2048,
        max_length: int = 8192,
        **kw: Any,
    ) -> None:
        kw.setdefault("reuse_prefix", False)
        kw["max_length"] = max_length
        super().__init__(model, max_doc_tokens=max_doc_tokens, **kw)
        self.instruction = instruction or self.prompt.defaults["instruction"]
        self.think = think
        self.max_new_tokens = max_new_tokens or (1024 if think else 4)
        self.temperature = temperature
        self.prefill = "" if think else self.prompt.defaults["no_think_prefill"]
        self.pattern = self.prompt.regex()

    def render(self, query: str, document: str) -> str:
        q = self.lm.truncate_text(query, 2048)
        msgs = self.prompt.messages(query=q, document=document, instruction=self.instruction)
        return self.lm.chat(msgs) + self.prefill

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        self._begin(len(pairs))
        prompts = []
        for i, (q, it) in enumerate(pairs):
            d = self.lm.truncate_text(doc_text(it), self.max_doc_tokens)
            qt = q.text or ""
            d, note = self.fit_document(partial(self.render, qt), d, reserve=self.max_new_tokens)
            self._note(i, note)
            prompts.append(self.render(qt, d))
        before = self.lm.calls
        gens = self.lm.generate_detailed(
            prompts, max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed
        )
        scores = np.zeros(len(pairs))
        for i, g in enumerate(gens):
            text = self.prefill + g.text
            parsed = parse_answer(text, pattern=self.pattern)
            if parsed.value is None or parsed.span is None:
                self._note(i, parsed.note)
                continue
            p = answer_probability(g, self.lm.tokenizer, parsed.span, offset=len(self.prefill))
            scores[i] = parsed.value * p
        return scores, self.lm.calls - before
