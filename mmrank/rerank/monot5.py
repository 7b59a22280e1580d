"""monoT5 (Nogueira et al., "Document Ranking with a Pretrained Sequence-to-Sequence Model", arXiv 2003.06713).

Input ``"Query: {q} Document: {d} Relevant:"``; score = ``log_softmax([z_false, z_true])[true]`` at the first
decoder step (castorini/pygaggle's monoT5 scoring).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmrank.fusion import Norm
from mmrank.llm.seq2seq import Seq2SeqLM
from mmrank.prompts import load_prompt
from mmrank.rerank.base import ScoringReranker
from mmrank.types import Item, Query


class MonoT5Reranker(ScoringReranker):
    name = "monot5"

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
        batch_size: int = 16,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, fusion=fusion, fusion_weight=fusion_weight, seed=seed)
        self.model_id = model or "castorini/monot5-base-msmarco-10k"
        self.lm = Seq2SeqLM(self.model_id, device=device, dtype=dtype, max_length=max_length, batch_size=batch_size)
        self.prompt = load_prompt("monot5")
        self.true_id = self.lm.token_id(self.prompt.defaults["positive"])
        self.false_id = self.lm.token_id(self.prompt.defaults["negative"])

    def render(self, query: str, document: str) -> str:
        return self.prompt.render(query=query, document=document)

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        before = self.lm.calls
        z = self.lm.first_step_logits([self.render(q.text or "", it.full_text) for q, it in pairs])
        if len(pairs) == 0:
            return np.zeros(0), 0
        two = torch.stack([z[:, self.false_id], z[:, self.true_id]], dim=1).double()
        return torch.log_softmax(two, dim=1)[:, 1].numpy(), self.lm.calls - before
