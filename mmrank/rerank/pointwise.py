"""Pointwise LLM rerankers: one forward pass per (query, document), no generation.

* :class:`YesNoReranker` -- yes/no relevance judge, SFT head ``p(yes) = softmax(z_no, z_yes)[yes]`` or the
  contrastive head ``z_yes`` ("SFT or Contrastive Learning? Towards Better Multimodal LLM Reranking",
  arXiv 2510.14824; prompt of the lychee-rerank / Qwen3-Reranker family).
* :class:`ProRankReranker` -- ProRank / mxbai-rerank-v2 (arXiv 2506.03487): ``logit("1") - logit("0")`` with its
  raw prompt layout, optional ``sigmoid(score - est_max / 2)``.
* :class:`QueryLikelihoodReranker` -- UPR (arXiv 2204.07496): mean ``log p(query | passage prompt)``.

All share :class:`LLMPointwiseReranker`: prompts from ``mmrank/prompts/*.yaml``, documents truncated to
``max_doc_tokens``, pairs scored in length-sorted batches across all queries, and (``reuse_prefix=True``) the KV
cache of the part of the prompt before the document computed once per query and reused for all its documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from mmrank.fusion import Norm
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.prompts import PromptTemplate, load_prompt
from mmrank.rerank.base import Outcome, ScoringReranker
from mmrank.rerank.heads import check_head, head_scores
from mmrank.types import Hit, Item, Query

_SENTINEL = "\x00MMRANK_DOCUMENT\x00"


def split_at_document(render: Any, **fields: Any) -> tuple[str, str]:
    """Render with a sentinel document and split there: ``(text before, text after)`` the document.

    Trailing whitespace of the part before moves to the part after, so that splitting the tokenisation at
    the boundary does not isolate a space the tokenizer would have merged with the document's first word.
    """
    text = render(document=_SENTINEL, **fields)
    if text.count(_SENTINEL) != 1:
        raise ValueError("the template must contain {document} exactly once")
    before, after = text.split(_SENTINEL)
    stripped = before.rstrip()
    return stripped, before[len(stripped) :] + "\x01" + after


def doc_text(item: Item) -> str:
    return " ".join(item.full_text.split())


class LLMPointwiseReranker(ScoringReranker):
    """Base of the causal-LM pointwise rerankers (see the module docstring)."""

    prompt_name = ""
    default_model = ""

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 4096,
        batch_size: int = 8,
        max_doc_tokens: int | None = 512,
        reuse_prefix: bool = True,
        prompt: str | PromptTemplate | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
        lm: CausalLM | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, fusion=fusion, fusion_weight=fusion_weight, seed=seed)
        self.model_id = model or self.default_model
        self.lm = lm or get_causal_lm(
            self.model_id, gguf_file=gguf_file, device=device, dtype=dtype, max_length=max_length, batch_size=batch_size
        )
        self.prompt = prompt if isinstance(prompt, PromptTemplate) else load_prompt(prompt or self.prompt_name)
        self.max_doc_tokens = max_doc_tokens
        self.reuse_prefix = reuse_prefix
        self._notes: list[str | None] = []

    # -- prompt construction ---------------------------------------------------------------------------
    def render(self, query: str, document: str) -> str:
        """The full model input for one pair (text, chat markup included)."""
        raise NotImplementedError

    def prompt_parts(self, query: str) -> tuple[str, str]:
        """``(prefix, template_of_rest)``: everything before the document, and the rest with a \\x01 slot."""
        return split_at_document(lambda document: self.render(query, document))

    def build(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[list[str], list[str]]:
        prompts, prefixes = [], []
        parts: dict[str, tuple[str, str]] = {}
        for q, it in pairs:
            qt = q.text or ""
            if qt not in parts:
                parts[qt] = self.prompt_parts(qt)
            pre, rest = parts[qt]
            d = self.lm.truncate_text(doc_text(it), self.max_doc_tokens)
            prompts.append(pre + rest.replace("\x01", d, 1))
            prefixes.append(pre)
        return prompts, prefixes

    def logits(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[torch.Tensor, int]:
        prompts, prefixes = self.build(pairs)
        before = self.lm.calls
        out = self.lm.next_token_logits(prompts, prefixes if self.reuse_prefix else None)
        return out, self.lm.calls - before

    # -- fallbacks --------------------------------------------------------------------------------------
    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        self._notes = []
        outcomes = super()._rerank_lists(jobs)
        if self._notes:
            at = 0
            for oc, (_q, hits) in zip(outcomes, jobs, strict=True):
                counts = Counter(n for n in self._notes[at : at + len(hits)] if n)
                at += len(hits)
                oc.fallbacks += [f"{self.name}: {n} ({c}/{len(hits)} docs)" for n, c in sorted(counts.items())]
        return outcomes


class YesNoReranker(LLMPointwiseReranker):
    """Yes/no relevance judge (arXiv 2510.14824): ``head="sft"`` gives ``p(yes)`` from the {no, yes} softmax,
    ``head="cl"`` the raw ``yes`` logit."""

    name = "yes-no"
    prompt_name = "yes_no"
    default_model = "Qwen/Qwen3-Reranker-0.6B"

    def __init__(
        self,
        model: str | None = None,
        *,
        head: Literal["sft", "cl"] = "sft",
        instruction: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(model, **kw)
        self.head = check_head(head)
        self.instruction = instruction or self.prompt.defaults["instruction"]
        self.yes_id = self.lm.token_id(self.prompt.defaults["positive"])
        self.no_id = self.lm.token_id(self.prompt.defaults["negative"])

    def render(self, query: str, document: str) -> str:
        msgs = self.prompt.messages(query=query, document=document, instruction=self.instruction)
        # Qwen3-Reranker's assistant turn starts with an empty think block; other templates ignore the flag
        return self.lm.chat(msgs, enable_thinking=False)

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        z, calls = self.logits(pairs)
        return head_scores(z.double(), self.head, yes_id=self.yes_id, no_id=self.no_id).numpy(), calls


class ProRankReranker(LLMPointwiseReranker):
    """ProRank (arXiv 2506.03487): ``logit("1") - logit("0")``; ``normalize=True`` maps it through
    ``sigmoid(score - est_max / 2)`` (est_max 9 for the 0.5B base model, 12 for large)."""

    name = "prorank"
    prompt_name = "prorank"
    default_model = "mixedbread-ai/mxbai-rerank-base-v2"

    def __init__(
        self,
        model: str | None = None,
        *,
        instruction: str | None = None,
        normalize: bool = False,
        est_max: float | None = None,
        max_query_fraction: float = 0.75,
        **kw: Any,
    ) -> None:
        super().__init__(model, **kw)
        self.instruction = instruction
        self.normalize = normalize
        self.est_max = float(est_max if est_max is not None else self.prompt.defaults["est_max"])
        self.max_query_tokens = int(max_query_fraction * self.lm.max_length)
        self.pos_id = self.lm.token_id(self.prompt.defaults["positive"])
        self.neg_id = self.lm.token_id(self.prompt.defaults["negative"])

    def render(self, query: str, document: str) -> str:
        p = self.prompt
        line = p.render_extra("instruction_line", instruction=self.instruction) if self.instruction else ""
        q = self.lm.truncate_text(query, self.max_query_tokens)
        user = p.render(instruction_line=line, query=q, document=document)
        return p.render_extra("layout", system=p.render_system(), user=user)

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        z, calls = self.logits(pairs)
        s = (z[:, self.pos_id] - z[:, self.neg_id]).double()
        if self.normalize:
            s = torch.sigmoid(s - self.est_max / 2)
        return s.numpy(), calls


class QueryLikelihoodReranker(LLMPointwiseReranker):
    """UPR-style query likelihood (arXiv 2204.07496): the query's log-likelihood given a prompt that asks for a
    question about the passage; ``reduce="mean"`` (UPR) or ``"sum"``."""

    name = "query-likelihood"
    prompt_name = "query_likelihood"
    default_model = "Qwen/Qwen2.5-0.5B-Instruct"

    def __init__(self, model: str | None = None, *, reduce: Literal["mean", "sum"] = "mean", **kw: Any) -> None:
        kw.setdefault("reuse_prefix", False)
        super().__init__(model, **kw)
        if reduce not in ("mean", "sum"):
            raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
        self.reduce = reduce

    def render(self, query: str, document: str) -> str:
        """The passage prompt; the query is scored as the assistant's continuation of it."""
        return self.lm.chat(self.prompt.messages(document=document))

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        prompts = [self.render("", self.lm.truncate_text(doc_text(it), self.max_doc_tokens)) for _q, it in pairs]
        before = self.lm.calls
        lps = self.lm.continuation_logprobs(prompts, [q.text or "" for q, _it in pairs])
        red = np.mean if self.reduce == "mean" else np.sum
        return np.array([float(red(lp)) for lp in lps]), self.lm.calls - before
