"""ICR -- in-context reranking from attention (Chen et al., "Attention in Large Language Models Yields Efficient
Zero-Shot Re-Rankers", ICLR 2025, arXiv 2410.02642).

All candidates go into one prompt, query last (template ``instruct``)::

    {chat prefix} Here are some paragraphs:{sep}[1] d1{sep}[2] d2 ...
    {sep}{late instruction}{sep}Query: {q}{chat suffix}

The *query span* is every token after the separator that follows the last document. For each layer ``l`` and head
``h`` the attention of the query-span tokens ``j`` to each document token ``k`` is averaged over ``j`` and summed
over layers and heads: ``a(k) = sum_l sum_h mean_j attn[l, h, j, k]``. The same is computed for the content-free
calibration query ``"N/A"``, and per document ``c(k) = a_q(k) - a_NA(k)``, ``m(k) = [c(k) > mean(c) - 2 std(c)]``
(mean and unbiased std over that document's tokens), ``score = sum_k m(k) c(k)`` (``masked_NA_calibration``, the
default; ``NA_calibration_no_agg``, ``query_last`` and ``attention_sorting`` are the paper's ablations).

The documents are encoded once; their KV cache serves both the calibration and the real query span, which alone are
run with eager attention to read attention weights (3 model calls per list: context, "N/A" span, query span).
``reverse_doc_order=True`` (the released runs) puts the retriever's best document last, next to the query.
``window`` / ``stride`` give the sliding-window variant for long lists (back to front, like RankGPT; the official
code's default stride is ``window // 2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from mmrank.errors import DataFormatError
from mmrank.fusion import Norm, interpolate
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, Reranker
from mmrank.types import Hit, Query

Strategy = Literal["masked_NA_calibration", "NA_calibration_no_agg", "query_last", "attention_sorting"]
STRATEGIES = ("masked_NA_calibration", "NA_calibration_no_agg", "query_last", "attention_sorting")


@dataclass(slots=True)
class ICRInput:
    """Token ids of one ICR prompt, split where the KV cache is cut, with every document's token span."""

    context: list[int]  # prefix + documents + separator (cached)
    doc_spans: list[tuple[int, int]]  # [start, end) of "[i] text" in ``context``
    query_span: list[int]  # late instruction + sep + "Query: q" + chat suffix
    calibration_span: list[int]  # the same with the calibration query


def chat_wrap(lm: CausalLM) -> tuple[str, str]:
    """The chat template's text before and after a user message (the paper's prompt prefix / suffix)."""
    marker = "\x00ICR\x00"
    text = lm.chat([{"role": "user", "content": marker}], add_generation_prompt=True)
    pre, post = text.split(marker)
    return pre, post


def token_weights(attentions: Sequence[torch.Tensor], n_keys: int, last_only: bool = False) -> torch.Tensor:
    """``a(k) = sum_l sum_h mean_j attn[l][0, h, j, k]`` for the first ``n_keys`` keys (float64)."""
    total = torch.zeros(n_keys, dtype=torch.float64)
    for att in attentions:
        a = att[0, :, -1:, :n_keys] if last_only else att[0, :, :, :n_keys]
        total += a.double().mean(dim=1).sum(dim=0).cpu()
    return total


def aggregate(
    a_q: torch.Tensor, a_na: torch.Tensor | None, spans: Sequence[tuple[int, int]], strategy: str
) -> list[float]:
    """Document scores from token weights (the paper's per-document masked calibration and its ablations)."""
    out = []
    for s, e in spans:
        q = a_q[s:e]
        if a_na is None:
            out.append(float(q.sum()))
            continue
        c = q - a_na[s:e]
        if strategy == "NA_calibration_no_agg" or len(c) < 2:
            out.append(float(c.sum()))
            continue
        mask = c > c.mean() - 2 * c.std()
        out.append(float((c * mask).sum()))
    return out


class ICRReranker(Reranker):
    """In-context reranking from attention (arXiv 2410.02642); see the module docstring."""

    name = "icr"

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 32768,
        retrieval_type: Literal["IE", "QA"] = "IE",
        scoring_strategy: Strategy = "masked_NA_calibration",
        reverse_doc_order: bool = True,
        max_doc_words: int | None = 300,
        sep: str | None = None,
        calibration_query: str | None = None,
        window: int | None = None,
        stride: int | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
        lm: CausalLM | None = None,
    ) -> None:
        super().__init__(seed=seed)
        if scoring_strategy not in STRATEGIES:
            raise ValueError(f"scoring_strategy must be one of {STRATEGIES}, got {scoring_strategy!r}")
        if retrieval_type not in ("IE", "QA"):
            raise ValueError(f"retrieval_type must be 'IE' or 'QA', got {retrieval_type!r}")
        self.model_id = model or "meta-llama/Meta-Llama-3.1-8B-Instruct"
        self.lm = lm or get_causal_lm(
            self.model_id, gguf_file=gguf_file, device=device, dtype=dtype, max_length=max_length
        )
        self.prompt = load_prompt("icr")
        d = self.prompt.defaults
        self.instruction = d["instruction_ie"] if retrieval_type == "IE" else d["instruction_qa"]
        self.strategy = scoring_strategy
        self.reverse_doc_order = reverse_doc_order
        self.max_doc_words = max_doc_words
        self.sep = sep if sep is not None else d["sep"]
        self.calibration_query = calibration_query or d["calibration_query"]
        if window is not None and window < 2:
            raise ValueError("window must be at least 2 (or None for one context)")
        self.window = window
        self.stride = stride if stride is not None else (window // 2 if window else None)
        if self.window and self.stride is not None and not 0 < self.stride < self.window:
            raise ValueError("stride must be in (0, window)")
        self.fusion = fusion
        self.fusion_weight = fusion_weight
        self._wrap = chat_wrap(self.lm)

    # -- prompt -------------------------------------------------------------------------------------------
    def doc_text(self, hit: Hit) -> str:
        it = hit.item
        assert it is not None
        text = f"{it.title}\n{it.text or ''}" if it.title else (it.text or "")
        words = text.split(" ")
        if self.max_doc_words is not None and len(words) > self.max_doc_words:
            text = " ".join(words[: self.max_doc_words])
        return text.strip()

    def build(self, query: str, docs: Sequence[str]) -> ICRInput:
        """Token ids of the prompt over ``docs`` (already in context order)."""
        pre, post = self._wrap
        enc = self.lm.encode
        ctx = enc(pre + (self.prompt.user or ""))
        sep = enc(self.sep)
        spans = []
        for i, d in enumerate(docs, start=1):
            ctx += sep
            ids = enc(self.prompt.render_extra("doc", index=i, text=d))
            spans.append((len(ctx), len(ctx) + len(ids)))
            ctx += ids
        ctx += sep

        def span(q: str) -> list[int]:
            head = self.prompt.render_extra("query_span", instruction=self.instruction, sep=self.sep)
            return enc(head) + enc(" " + q.strip()) + enc(post)

        return ICRInput(ctx, spans, span(query), span(self.calibration_query))

    # -- scoring ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _span_attention(self, cache: Any, n_ctx: int, span: list[int]) -> list[torch.Tensor]:
        lm = self.lm
        ids = torch.tensor([span], dtype=torch.long, device=lm.device)
        mask = torch.ones((1, n_ctx + len(span)), dtype=torch.long, device=lm.device)
        pos = torch.arange(n_ctx, n_ctx + len(span), device=lm.device).unsqueeze(0)
        lm.calls += 1
        out = lm.model.base_model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            output_attentions=True,
            **{lm._cache_arg: lm.expand_cache(cache, 1)},
        )
        return list(out.attentions)

    def score_docs(self, query: str, docs: Sequence[str]) -> list[float]:
        """ICR scores of ``docs`` (in context order) for ``query``."""
        inp = self.build(query, docs)
        total = len(inp.context) + max(len(inp.query_span), len(inp.calibration_span))
        if total > self.lm.max_length:
            raise DataFormatError(
                f"ICR prompt has {total} tokens > max_length {self.lm.max_length}; lower max_doc_words or set window="
            )
        model = self.lm.model
        impl = model.config._attn_implementation
        cache = self.lm.prefix_cache(inp.context)
        n = len(inp.context)
        try:
            model.set_attn_implementation("eager")
            # attention_sorting and NA_calibration_no_agg read only the span's last token (official code)
            last_only = self.strategy in ("attention_sorting", "NA_calibration_no_agg")
            a_q = token_weights(self._span_attention(cache, n, inp.query_span), n, last_only)
            a_na = None
            if self.strategy in ("masked_NA_calibration", "NA_calibration_no_agg"):
                a_na = token_weights(self._span_attention(cache, n, inp.calibration_span), n, last_only)
        finally:
            model.set_attn_implementation(impl)
        return aggregate(a_q, a_na, inp.doc_spans, self.strategy)

    def _rank_window(self, query: str, hits: Sequence[Hit], idx: list[int]) -> tuple[list[int], list[float]]:
        """Order (best first) and scores of ``idx`` (positions in ``hits``, first-stage order)."""
        ctx = list(reversed(idx)) if self.reverse_doc_order else list(idx)
        scores = self.score_docs(query, [self.doc_text(hits[i]) for i in ctx])
        by_pos = dict(zip(ctx, scores, strict=True))
        order = sorted(idx, key=lambda i: -by_pos[i])
        return order, [by_pos[i] for i in idx]

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        out = []
        for q, hits in jobs:
            before = self.lm.calls
            n = len(hits)
            if n == 0:
                out.append(Outcome([], [], 0))
                continue
            if self.window is None or n <= self.window:
                order, scores = self._rank_window(q.text or "", hits, list(range(n)))
                s = np.asarray(scores)
                if self.fusion is not None:
                    s = interpolate(s, [h.score for h in hits], self.fusion_weight, self.fusion)
                    order = sorted(range(n), key=lambda i: -s[i])
                out.append(Outcome(order, s.tolist(), self.lm.calls - before))
                continue
            order = list(range(n))
            assert self.stride is not None
            end = n
            while True:  # back to front, like RankGPT's sliding window
                start = max(0, end - self.window)
                order[start:end], _ = self._rank_window(q.text or "", hits, order[start:end])
                if start == 0:
                    break
                end -= self.stride
            out.append(Outcome(order, None, self.lm.calls - before))
        return out
