"""Cross-encoder reranker (Nogueira & Cho, "Passage Re-ranking with BERT", arXiv 1901.04085): a sequence
classifier reads ``[CLS] query [SEP] document [SEP]`` and its relevance logit is the score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrank.fusion import Norm
from mmrank.llm.seq_cls import SeqClsModel
from mmrank.rerank.base import ScoringReranker
from mmrank.types import Item, Query


class CrossEncoderReranker(ScoringReranker):
    """Any ``AutoModelForSequenceClassification`` checkpoint (e.g. ``cross-encoder/ms-marco-MiniLM-L-6-v2``)."""

    name = "cross-encoder"

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
        batch_size: int = 32,
        positive_label: int = 1,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, fusion=fusion, fusion_weight=fusion_weight, seed=seed)
        self.model_id = model or "cross-encoder/ms-marco-MiniLM-L-6-v2"
        self.lm = SeqClsModel(
            self.model_id,
            device=device,
            dtype=dtype,
            max_length=max_length,
            batch_size=batch_size,
            positive_label=positive_label,
        )

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        before = self.lm.calls
        s = self.lm.score([q.text or "" for q, _ in pairs], [it.full_text for _, it in pairs])
        return s, self.lm.calls - before
