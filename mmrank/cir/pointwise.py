"""Pointwise VLM reranking of composed queries: one call per candidate, score = logit("yes") - logit("no").

The per-candidate baseline that EBR (:mod:`mmrank.cir.ebr`, SQUARE arXiv 2509.26330) replaces with one grid pass:
the VLM sees the reference image, the candidate image and the modification text (``mmrank/prompts/
cir_pointwise.yaml``) and the first answer token's yes/no logits score the pair (the pointwise head of the MLLM
rerankers studied in arXiv 2510.14824). K candidates cost K prompts per query; the VLM backend batches them.
A candidate whose image cannot be decoded scores ``-inf`` (ranked last) and is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import ImageLoadError
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, ScoringReranker
from mmrank.types import Hit, Item, Query


class PointwiseVLMReranker(ScoringReranker):
    """(reference, candidate, modification) -> yes/no logit margin, one VLM prompt per candidate."""

    name = "cir-pointwise"
    modalities = frozenset({"image", "composed"})

    def __init__(
        self,
        lm: Any = None,
        *,
        model: str | None = None,
        prompt: str = "cir_pointwise",
        prompt_path: str | Path | None = None,
        batch_size: int = 8,
        seed: int = 0,
        **vlm_kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if lm is None and model is None:
            raise ValueError("pointwise CIR reranking needs a VLM: pass lm=VLM(...) or model=...")
        if lm is None or isinstance(lm, str):
            from mmrank.llm.vlm import get_vlm

            lm = get_vlm(str(lm or model), **vlm_kwargs)
        self.lm = lm
        self.prompt = load_prompt(prompt, prompt_path)
        self.yes = lm.token_id(str(self.prompt.defaults.get("yes", "yes")))
        self.no = lm.token_id(str(self.prompt.defaults.get("no", "no")))
        self.calls = 0
        self._notes: dict[int, str] = {}

    def conversation(self, q: Query, reference: Any, candidate: Any) -> list[dict[str, Any]]:
        text = self.prompt.render(instruction=(q.text or "").strip() or "(no change)")
        conv: list[dict[str, Any]] = []
        system = self.prompt.render_system()
        if system:
            conv.append({"role": "system", "content": system})
        content = [{"type": "image", "image": reference}, {"type": "image", "image": candidate}]
        conv.append({"role": "user", "content": [*content, {"type": "text", "text": text}]})
        return conv

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        scores = np.full(len(pairs), -np.inf)
        refs: dict[str, Any] = {}
        rows, convs = [], []
        self._notes = {}
        for i, (q, item) in enumerate(pairs):
            try:
                if q.id not in refs:
                    refs[q.id] = q.load_image()
                cand = item.load_image()
            except ImageLoadError as e:
                self._notes[i] = f"cir-pointwise: {e}; scored -inf"
                continue
            rows.append(i)
            convs.append(self.conversation(q, refs[q.id], cand))
        for s in range(0, len(convs), self.batch_size):
            logits = self.lm.next_token_logits(convs[s : s + self.batch_size])
            margin = (logits[:, self.yes] - logits[:, self.no]).float().numpy()
            scores[rows[s : s + self.batch_size]] = margin
        self.calls += len(convs)
        return scores, len(convs)

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        outcomes = super()._rerank_lists(jobs)
        at = 0
        for (_q, hits), oc in zip(jobs, outcomes, strict=True):
            oc.fallbacks += [self._notes[i] for i in range(at, at + len(hits)) if i in self._notes]
            at += len(hits)
        return outcomes
