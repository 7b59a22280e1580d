"""Groupwise reranking: GroupRank.

GroupRank -- "GroupRank: A Groupwise Paradigm for Effective and Efficient Passage Reranking with LLMs",
arXiv 2511.11653 (code: AQ-MedAI/Diver ``Reranker/rerank_groupwise.py``; checkpoints ``AQ-MedAI/Diver-GroupRank-7B``
/ ``-32B``). The candidates are shuffled and cut into groups (paper: 20, disjoint); the LLM gives every document
of a group an integer 0-10 in a JSON answer; scores are divided by 10 and averaged over ``repeats`` fresh
shuffles (test-time scaling). Optionally the result is fused with the first-stage score (paper: 0.6 / 0.4).
All groups of all repeats of all queries go to the LLM in one batched generation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from mmrank.fusion import Norm
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome
from mmrank.rerank.generative import ChatLLM, GenerativeReranker, query_rng, query_text
from mmrank.rerank.parsing import parse_group_scores
from mmrank.types import Hit, Query


def plan_groups(order: Sequence[int], group_size: int, stride: int) -> list[list[int]]:
    """Groups ``order[i : i + group_size]`` for ``i = 0, stride, 2*stride, ...`` (the official loop)."""
    if group_size < 1 or stride < 1:
        raise ValueError("group_size and stride must be >= 1")
    return [list(order[i : i + group_size]) for i in range(0, len(order), stride)]


def average_scores(n: int, observations: Sequence[tuple[int, float]]) -> tuple[list[float], list[int]]:
    """Mean score of each of ``n`` documents over its observations ``(doc, score)``.

    Returns ``(scores, unscored)``: documents never observed get 0.0 and are listed in ``unscored``.
    """
    total = np.zeros(n)
    count = np.zeros(n)
    for doc, s in observations:
        total[doc] += s
        count[doc] += 1
    unscored = [i for i in range(n) if count[i] == 0]
    means = np.divide(total, count, out=np.zeros(n), where=count > 0)
    return means.tolist(), unscored


class GroupRankReranker(GenerativeReranker):
    """GroupRank groupwise reranker (arXiv 2511.11653).

    Args:
        model: hub id or path of the LLM (or ``lm=``).
        group_size: documents per prompt (paper: 20). ``stride`` (default ``group_size``: disjoint groups) is the
            step between group starts, as ``interval`` in the official code.
        repeats: independent shuffles averaged per document (official code default 2; README TTS setting 6).
        temperature, top_p, max_new_tokens: generation (paper: 0.3, 0.8, 8000).
        max_chars: documents have newlines collapsed and are cut to this many characters (paper: 3000).
        fusion: ``None`` (default, the reranker score alone) or a normalisation (``"none"`` = the paper's raw
            ``0.6 * rerank + 0.4 * retriever``, ``"minmax"`` / ``"zscore"`` for retriever scores on other scales);
            ``fusion_weight`` is the reranker's weight (paper: 0.6).

    Fallbacks recorded: groups whose output could not be parsed (all their documents score 0 for that repeat,
    as in the official code), per-entry repairs, and documents that never received a score (0.0).
    Ties (common: integer 0-10 scores) are broken by first-stage rank, once, in :class:`~mmrank.rerank.base.Reranker`,
    whose written scores keep that order under any score-sorting evaluator.
    """

    name = "grouprank"

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: ChatLLM | None = None,
        group_size: int = 20,
        stride: int | None = None,
        repeats: int = 2,
        temperature: float = 0.3,
        top_p: float = 0.8,
        max_new_tokens: int = 8000,
        max_chars: int | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.6,
        device: str | None = None,
        seed: int = 0,
        **lm_kw: Any,
    ) -> None:
        lm_kw.setdefault("max_length", 32000)  # the official vLLM max_model_len
        super().__init__(model, lm=lm, device=device, seed=seed, fusion=fusion, fusion_weight=fusion_weight, **lm_kw)
        self.group_size = group_size
        self.stride = stride if stride is not None else group_size
        plan_groups([], self.group_size, self.stride)  # validates
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.repeats = repeats
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.prompt = load_prompt("grouprank")
        self.max_chars = int(max_chars if max_chars is not None else self.prompt.defaults.get("max_chars", 3000))

    def document(self, text: str) -> str:
        return re.sub(r"\n+", " ", text)[: self.max_chars]

    def build_messages(self, query: str, docs: Sequence[str]) -> list[dict[str, str]]:
        """The GroupRank conversation for one group (``docs`` already cut)."""
        block = "".join(self.prompt.render_extra("doc", index=i, text=t) for i, t in enumerate(docs, start=1))
        return self.prompt.messages(TOPK=len(docs), QUERY=query, PASSAGES=block)

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        texts = [[self.document(t) for t in self._texts(h, "plain")] for _q, h in jobs]
        queries = [query_text(q) for q, _h in jobs]
        groups: list[tuple[int, int, list[int]]] = []  # (query, repeat, document indices)
        for qi, (q, hits) in enumerate(jobs):
            rng = query_rng(self.seed, q, "grouprank")
            for rep in range(self.repeats):
                order = list(range(len(hits)))
                rng.shuffle(order)
                groups += [(qi, rep, g) for g in plan_groups(order, self.group_size, self.stride)]
        convs = []
        cut_groups = [0] * len(jobs)
        for qi, _rep, g in groups:
            msgs, cut = self.fit_documents(
                partial(self.build_messages, queries[qi]),
                [texts[qi][d] for d in g],
                reserve=self.max_new_tokens,
                cut=lambda d, n: d[:n],
                size=len,
                unit="characters",
            )
            cut_groups[qi] += bool(cut)
            convs.append(msgs)
        outs = self._complete(convs, max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p)
        obs: list[list[tuple[int, float]]] = [[] for _ in jobs]
        notes: list[list[str]] = [[] for _ in jobs]
        calls = [0] * len(jobs)
        for (qi, rep, g), out in zip(groups, outs, strict=True):
            calls[qi] += 1
            parsed = parse_group_scores(out, len(g))
            where = f"grouprank repeat {rep} group of {len(g)}"
            if parsed.failed:
                obs[qi] += [(d, 0.0) for d in g]
                notes[qi].append(f"{where}: {'; '.join(parsed.notes)}; all scored 0")
                continue
            obs[qi] += [(g[pos], s) for pos, s in parsed.scores.items()]
            if parsed.notes:
                notes[qi].append(f"{where}: {'; '.join(parsed.notes)}")
        result = []
        for qi, (_q, hits) in enumerate(jobs):
            if cut_groups[qi]:
                notes[qi].append(f"grouprank: documents cut to fit max_length in {cut_groups[qi]} group(s)")
            scores, unscored = average_scores(len(hits), obs[qi])
            if unscored:
                notes[qi].append(f"grouprank: {len(unscored)} document(s) never scored, given 0")
            result.append(Outcome(None, scores, model_calls=calls[qi], fallbacks=notes[qi]))
        return result
