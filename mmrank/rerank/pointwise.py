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

Fitting the context: a prompt longer than ``max_length`` has its *document* cut further (never the instruction or
the query), recorded per query as ``"<name>: document truncated to N tokens to fit max_length (k/n docs)"``; when
even an empty document does not fit, :class:`~mmrank.errors.ContextLengthError` names the query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from mmrank.errors import ContextLengthError
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
        self._notes: list[list[str]] = []  # per pair of the current score_pairs call

    # -- prompt construction ---------------------------------------------------------------------------
    def render(self, query: str, document: str) -> str:
        """The full model input for one pair (text, chat markup included)."""
        raise NotImplementedError

    def prompt_parts(self, query: str) -> tuple[str, str]:
        """``(prefix, template_of_rest)``: everything before the document, and the rest with a \\x01 slot."""
        return split_at_document(lambda document: self.render(query, document))

    def fit_document(self, render: Callable[[str], str], doc: str, *, reserve: int = 0) -> tuple[str, str | None]:
        """``doc`` cut (in tokens) until ``render(doc)`` plus ``reserve`` tokens fits ``max_length``, and the note.

        Raises :class:`ContextLengthError` when the prompt does not fit even with an empty document.
        """
        lm = self.lm
        limit = lm.max_length - reserve
        n = lm.count(render(doc))
        if n <= limit:
            return doc, None
        empty = lm.count(render(""))
        if empty > limit:
            raise ContextLengthError(
                f"{self.name}: the prompt has {empty} tokens without any document (+{reserve} reserved) "
                f"> max_length {lm.max_length}; shorten the query or instruction, or raise max_length"
            )
        ids = lm.encode(doc)
        budget = len(ids) - (n - limit)
        while budget > 0:
            cut = lm.tokenizer.decode(ids[:budget])
            n = lm.count(render(cut))
            if n <= limit:
                return cut, f"document truncated to {budget} tokens to fit max_length"
            budget -= max(1, n - limit)
        return "", "document truncated to 0 tokens to fit max_length"

    def _begin(self, n: int) -> None:
        self._notes = [[] for _ in range(n)]

    def _note(self, i: int, note: str | None) -> None:
        if note:
            if len(self._notes) <= i:
                self._notes += [[] for _ in range(i + 1 - len(self._notes))]
            self._notes[i].append(note)

    def build(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[list[list[int]], list[int]]:
        """Token ids of every pair's prompt and the length of its query part (the cacheable prefix)."""
        self._begin(len(pairs))
        seqs, plens = [], []
        parts: dict[str, tuple[str, str, list[int]]] = {}
        for i, (q, it) in enumerate(pairs):
            qt = q.text or ""
            if qt not in parts:
                pre, rest = self.prompt_parts(qt)
                parts[qt] = (pre, rest, self.lm.encode(pre))
            pre, rest, pre_ids = parts[qt]
            d = self.lm.truncate_text(doc_text(it), self.max_doc_tokens)

            def make(x: str, pre: str = pre, rest: str = rest) -> str:
                return pre + rest.replace("\x01", x, 1)

            ids = pre_ids + self.lm.encode(make(d)[len(pre) :]) if self.reuse_prefix else self.lm.encode(make(d))
            reserve, note = 0, None
            while len(ids) > self.lm.max_length:  # the split tokenisation may differ from the whole by a token
                d, note = self.fit_document(make, d, reserve=reserve)
                ids = pre_ids + self.lm.encode(make(d)[len(pre) :]) if self.reuse_prefix else self.lm.encode(make(d))
                reserve += max(1, len(ids) - self.lm.max_length)
            self._note(i, note)
            seqs.append(ids)
            plens.append(len(pre_ids) if self.reuse_prefix else 0)
        return seqs, plens

    def logits(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[torch.Tensor, int]:
        seqs, plens = self.build(pairs)
        before = self.lm.calls
        out = self.lm.next_token_logits_ids(seqs, plens if self.reuse_prefix else None)
        return out, self.lm.calls - before

    # -- fallbacks --------------------------------------------------------------------------------------
    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        self._notes = []
        outcomes = super()._rerank_lists(jobs)
        if any(self._notes):
            at = 0
            for oc, (_q, hits) in zip(outcomes, jobs, strict=True):
                counts = Counter(n for ns in self._notes[at : at + len(hits)] for n in ns)
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
    ``sigmoid(score - est_max / 2)`` (est_max 9 for the 0.5B base model, 12 for large).

    The input is built from token ids exactly as ``MxbaiRerankV2.prepare_inputs`` does (mixedbread-ai/mxbai-rerank):
    chat prefix + ``[instruction: ...\n]query: q`` (cut to ``3/4 * max_length`` tokens) + ``\n`` +
    ``document: d`` (cut so that query and document together take at most ``max_length`` tokens, and the whole
    input at most the model's ``max_position_embeddings``) + ``\n`` + task + chat suffix. ``max_length`` is the
    official 8192 for the query-document part; the template adds about 80 tokens on top. Cuts are recorded.
    """

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
        max_length: int = 8192,
        max_query_fraction: float = 0.75,
        **kw: Any,
    ) -> None:
        kw.setdefault("max_doc_tokens", None)  # official: only the max_length budget limits the document
        super().__init__(model, max_length=max_length + 512, **kw)
        self.instruction = instruction
        self.normalize = normalize
        self.est_max = float(est_max if est_max is not None else self.prompt.defaults["est_max"])
        self.pair_max_length = max_length
        self.max_query_fraction = max_query_fraction
        self.pos_id = self.lm.token_id(self.prompt.defaults["positive"])
        self.neg_id = self.lm.token_id(self.prompt.defaults["negative"])
        p = self.prompt
        marker = "\x00USER\x00"
        prefix, suffix = p.render_extra("layout", system=p.render_system(), user=marker).split(marker)
        enc = self.lm.encode
        self._prefix, self._suffix = enc(prefix), enc(suffix)
        self._sep, self._task = enc(p.render_extra("sep")), enc(p.defaults["task"])
        predefined = len(self._prefix) + len(self._task) + len(self._suffix) + len(self._sep)
        self._model_max = int(getattr(self.lm.model.config, "max_position_embeddings", max_length + predefined))
        self._max = min(max_length, self._model_max - predefined)
        self._predefined = predefined

    def render(self, query: str, document: str) -> str:
        """The input as text (for reading; scoring uses :meth:`input_ids`, which tokenises it piecewise)."""
        p = self.prompt
        line = p.render_extra("instruction_line", instruction=self.instruction) if self.instruction else ""
        user = p.render(instruction_line=line, query=query, document=document)
        return p.render_extra("layout", system=p.render_system(), user=user)

    def query_ids(self, query: str) -> tuple[list[int], str | None]:
        p = self.prompt
        line = p.render_extra("instruction_line", instruction=self.instruction) if self.instruction else ""
        ids = self.lm.encode(p.render_extra("query_part", instruction_line=line, query=query))
        cap = int(self._max * self.max_query_fraction)
        if len(ids) > cap:
            return ids[:cap], f"query truncated to {cap} tokens (3/4 of max_length {self._max})"
        return ids, None

    def input_ids(self, q_ids: list[int], document: str) -> tuple[list[int], str | None]:
        """The official token layout for one pair, and a note when the document was cut."""
        d_full = self.lm.encode(self.prompt.render_extra("document_part", document=document))
        doc_max = min(self._model_max - len(q_ids) - self._predefined, self._max)
        d_ids = d_full[: max(doc_max, 0)]
        second = (self._sep + d_ids)[: max(self._max - len(q_ids), 0)]  # prepare_for_model(only_second)
        kept = max(len(second) - len(self._sep), 0)
        note = f"document truncated to {kept} tokens to fit max_length {self._max}" if kept < len(d_full) else None
        return self._prefix + q_ids + second + self._sep + self._task + self._suffix, note

    def build(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[list[list[int]], list[int]]:
        self._begin(len(pairs))
        seqs, plens = [], []
        qcache: dict[str, tuple[list[int], str | None]] = {}
        for i, (q, it) in enumerate(pairs):
            qt = q.text or ""
            if qt not in qcache:
                qcache[qt] = self.query_ids(qt)
            q_ids, qnote = qcache[qt]
            d = self.lm.truncate_text(it.full_text, self.max_doc_tokens)  # as given, like the official code
            ids, note = self.input_ids(q_ids, d)
            self._note(i, qnote)
            self._note(i, note)
            seqs.append(ids)
            plens.append(len(self._prefix) + len(q_ids))
        return seqs, plens

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
        self._begin(len(pairs))
        prompts = []
        for i, (q, it) in enumerate(pairs):
            d = self.lm.truncate_text(doc_text(it), self.max_doc_tokens)
            d, note = self.fit_document(lambda x: self.render("", x), d, reserve=self.lm.count(q.text or ""))
            self._note(i, note)
            prompts.append(self.render("", d))
        before = self.lm.calls
        lps = self.lm.continuation_logprobs(prompts, [q.text or "" for q, _it in pairs])
        red = np.mean if self.reduce == "mean" else np.sum
        return np.array([float(red(lp)) for lp in lps]), self.lm.calls - before
