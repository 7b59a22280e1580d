"""ICR -- in-context reranking from attention (Chen et al., "Attention in Large Language Models Yields Efficient
Zero-Shot Re-Rankers", ICLR 2025, arXiv 2410.02642).

All candidates go into one prompt, query last (template ``instruct``)::

    {prefix} Here are some paragraphs:{sep}[1] d1{sep}[2] d2 ...
    {sep}{late instruction}{sep}Query: {q}{suffix}

Prompt style (``prompt_style="auto"``): a Llama-3 tokenizer (``<|start_header_id|>``, ``<|eot_id|>``) gets the official
code's layout -- its BOS, prefix ``<|start_header_id|>user<|end_header_id|>``, suffix
``<|eot_id|><|start_header_id|>assistant<|end_header_id|>`` and separator ``" \n\n"``; any other model gets the text
its chat template writes before and after a user message and ``"\n\n"`` (the official code supports only Llama-3
and Mistral; this is the documented extension).

The *query span* is every token after the separator that follows the last document. For each layer ``l`` and head
``h`` the attention of the query-span tokens ``j`` to each document token ``k`` is averaged over ``j`` and summed
over layers and heads: ``a(k) = sum_l sum_h mean_j attn[l, h, j, k]``. The same is computed for the content-free
calibration query ``"N/A"``, and per document ``c(k) = a_q(k) - a_NA(k)``, ``m(k) = [c(k) > mean(c) - 2 std(c)]``
(mean and unbiased std over that document's tokens), ``score = sum_k m(k) c(k)`` (``masked_NA_calibration``, the
default; ``NA_calibration_no_agg``, ``query_last`` and ``attention_sorting`` are the paper's ablations).

The documents are encoded once; their KV cache serves both the calibration and the real query span (3 model calls
per list: context, "N/A" span, query span). Attention probabilities are recomputed in float32 from the cached keys
and the span's queries by :meth:`~mmrank.llm.causal.CausalLM.span_attention` -- as the official code does from its
cached query states -- so the model's attention implementation is never switched (a shared model stays thread-safe)
and bf16 weights on CUDA do not round the probabilities. ``reverse_doc_order=True`` (the released runs) puts the
retriever's best document last, next to the query.

``window`` / ``stride`` give the sliding-window variant for long lists (the official ``rerank``: back to front,
default stride ``window // 2``). Each window is ordered by its (fused, when ``fusion`` is set) scores; every document
keeps the score of the last window it was scored in (the official ``sorted_doc_scores``), and the final ranking is the
windows' order (the base class writes the scores strictly decreasing along it). A prompt longer than ``max_length``
has its documents cut (in words) until it fits, recorded as a fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from mmrank.errors import ContextLengthError
from mmrank.fusion import Norm
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, Reranker, order_by_scores
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


def is_llama3(tokenizer: Any) -> bool:
    """Whether the tokenizer has Llama-3's chat header tokens (the official code's ``'llama-3' in name`` test)."""
    vocab = tokenizer.get_vocab()
    return "<|start_header_id|>" in vocab and "<|eot_id|>" in vocab


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
        prompt_style: Literal["auto", "llama-3", "chat"] = "auto",
        calibration_query: str | None = None,
        window: int | None = None,
        stride: int | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
        lm: CausalLM | None = None,
    ) -> None:
        super().__init__(seed=seed, fusion=fusion, fusion_weight=fusion_weight)
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
        if prompt_style not in ("auto", "llama-3", "chat"):
            raise ValueError(f"prompt_style must be 'auto', 'llama-3' or 'chat', got {prompt_style!r}")
        style = ("llama-3" if is_llama3(self.lm.tokenizer) else "chat") if prompt_style == "auto" else prompt_style
        self.prompt_style = style
        if style == "llama-3":
            self._wrap = (d["llama3_prefix"], d["llama3_suffix"])
            bos = self.lm.tokenizer.bos_token_id
            self._bos = [int(bos)] if bos is not None else []
        else:
            self._wrap = chat_wrap(self.lm)
            self._bos = []
        self.sep = sep if sep is not None else (d["llama3_sep"] if style == "llama-3" else d["sep"])
        self.calibration_query = calibration_query or d["calibration_query"]
        if window is not None and window < 2:
            raise ValueError("window must be at least 2 (or None for one context)")
        self.window = window
        self.stride = stride if stride is not None else (window // 2 if window else None)
        if self.window and self.stride is not None and not 0 < self.stride < self.window:
            raise ValueError("stride must be in (0, window)")

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
        ctx = self._bos + enc(pre + (self.prompt.user or ""))
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
    def score_docs(self, query: str, docs: Sequence[str]) -> list[float]:
        """ICR scores of ``docs`` (in context order) for ``query``; the prompt must fit ``max_length``."""
        inp = self.build(query, docs)
        total = len(inp.context) + max(len(inp.query_span), len(inp.calibration_span))
        if total > self.lm.max_length:
            raise ContextLengthError(
                f"ICR prompt has {total} tokens > max_length {self.lm.max_length}; lower max_doc_words or set window="
            )
        cache = self.lm.prefix_cache(inp.context)
        n = len(inp.context)
        # attention_sorting and NA_calibration_no_agg read only the span's last token (official code)
        last_only = self.strategy in ("attention_sorting", "NA_calibration_no_agg")
        a_na = None
        if self.strategy in ("masked_NA_calibration", "NA_calibration_no_agg"):
            a_na = self.lm.span_attention(cache, n, inp.calibration_span, last_only=last_only)[:n]
        a_q = self.lm.span_attention(cache, n, inp.query_span, last_only=last_only)[:n]
        return aggregate(a_q, a_na, inp.doc_spans, self.strategy)

    def fitted_docs(self, query: str, docs: list[str]) -> tuple[list[str], str | None]:
        """``docs`` cut (in words, all to one length) until the prompt fits ``max_length``, and the note to record.

        Raises :class:`ContextLengthError` when even one-word documents do not fit.
        """

        def size(ds: list[str]) -> int:
            inp = self.build(query, ds)
            return len(inp.context) + max(len(inp.query_span), len(inp.calibration_span))

        limit = self.lm.max_length
        if size(docs) <= limit:
            return docs, None
        lo, hi = 0, max((len(d.split(" ")) for d in docs), default=0)
        while lo < hi:  # largest word cap that fits
            mid = (lo + hi + 1) // 2
            if size([" ".join(d.split(" ")[:mid]) for d in docs]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            raise ContextLengthError(
                f"ICR prompt does not fit max_length {limit} even with empty documents "
                f"({len(docs)} documents); raise max_length or set window="
            )
        return [
            " ".join(d.split(" ")[:lo]) for d in docs
        ], f"{self.name}: documents cut to {lo} words to fit max_length"

    def _score_window(self, query: str, hits: Sequence[Hit], idx: list[int], notes: list[str]) -> dict[int, float]:
        """ICR scores of ``idx`` (positions in ``hits``), keyed by position."""
        ctx = list(reversed(idx)) if self.reverse_doc_order else list(idx)
        docs, cut = self.fitted_docs(query, [self.doc_text(hits[i]) for i in ctx])
        if cut and cut not in notes:
            notes.append(cut)
        return dict(zip(ctx, self.score_docs(query, docs), strict=True))

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        out = []
        for q, hits in jobs:
            before = self.lm.calls
            n = len(hits)
            notes: list[str] = []
            if n == 0:
                out.append(Outcome(None, [], 0))
                continue
            if self.window is None or n <= self.window:
                by_pos = self._score_window(q.text or "", hits, list(range(n)), notes)
                out.append(Outcome(None, [by_pos[i] for i in range(n)], self.lm.calls - before, notes))
                continue
            order = list(range(n))
            kept: dict[int, float] = {}
            assert self.stride is not None
            end = n
            while True:  # back to front, like RankGPT's sliding window
                start = max(0, end - self.window)
                idx = order[start:end]
                by_pos = self._score_window(q.text or "", hits, idx, notes)
                fused, fb = self.fuse([by_pos[i] for i in idx], [hits[i] for i in idx])
                notes += [f for f in fb if f not in notes]
                kept |= dict(zip(idx, fused.tolist(), strict=True))  # the last window's score stays
                order[start:end] = [idx[j] for j in order_by_scores(fused.tolist())]
                if start == 0:
                    break
                end -= self.stride
            out.append(Outcome(order, [kept[i] for i in range(n)], self.lm.calls - before, notes))
        return out
