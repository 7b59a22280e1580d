"""Bi-encoder reranking: score = cosine between the query and item embeddings of any encoder
(Reimers & Gurevych, Sentence-BERT, arXiv 1908.10084). Queries and candidates of all queries are
encoded in one batched pass each; duplicate items across queries are encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmrank import registry
from mmrank.encoders.base import Encoder
from mmrank.rerank.base import ScoringReranker
from mmrank.types import Item, Query


class BiEncoderReranker(ScoringReranker):
    name = "bi-encoder"

    def __init__(
        self,
        model: str | None = None,
        *,
        encoder: Encoder | str = "sentence-transformers",
        batch_size: int = 64,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if isinstance(encoder, str):
            enc_kwargs: dict[str, Any] = {"batch_size": batch_size}
            if model is not None:
                enc_kwargs["model"] = model
            if device is not None:
                enc_kwargs["device"] = device
            encoder = registry.encoder(encoder, **enc_kwargs)
        assert isinstance(encoder, Encoder)
        self.encoder: Encoder = encoder
        self.modalities = encoder.modalities

    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        queries = list({id(q): q for q, _ in pairs}.values())
        items = list({(it.id, id(it)): it for _, it in pairs}.values())
        qpos = {id(q): i for i, q in enumerate(queries)}
        ipos = {(it.id, id(it)): i for i, it in enumerate(items)}
        qv = self.encoder.encode_queries(queries, batch_size=self.batch_size)
        iv = self.encoder.encode_items(items, batch_size=self.batch_size)
        qi = np.array([qpos[id(q)] for q, _ in pairs], dtype=np.int64)
        ii = np.array([ipos[(it.id, id(it))] for _, it in pairs], dtype=np.int64)
        scores = np.einsum("nd,nd->n", qv[qi], iv[ii]) if len(pairs) else np.zeros(0)
        calls = -(-len(queries) // self.batch_size) + -(-len(items) // self.batch_size)
        return scores, calls
