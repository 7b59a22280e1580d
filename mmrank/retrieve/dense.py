"""Dense retrieval: any :class:`~mmrank.encoders.base.Encoder` + any vector index (exact torch by default).

Works for every modality the encoder reads (text with sentence-transformers, images with CLIP / CNN).
Item embeddings can be cached on disk by content hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrank import registry
from mmrank.encoders.base import Encoder
from mmrank.index.base import VectorIndex
from mmrank.index.cache import EmbeddingCache, content_key
from mmrank.index.fingerprint import encoder_cache_id
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Hit, Item, Query, Ranking, Run


def item_key(item: Item) -> str:
    """Cache key: hash of the image file's bytes (or raw bytes) plus the text."""
    parts = []
    if item.image is not None and isinstance(item.image, (str, Path, bytes)):
        parts.append(content_key(item.image if isinstance(item.image, bytes) else Path(item.image)))
    parts.append(content_key(item.full_text or ""))
    return "-".join(parts)


class DenseRetriever(Retriever):
    """Encode items once, search queries in one batched index call."""

    name = "dense"

    def __init__(
        self,
        encoder: Encoder | str = "sentence-transformers",
        *,
        model: str | None = None,
        index: VectorIndex | str = "exact",
        cache_dir: str | Path | None = None,
        batch_size: int | None = None,
        **encoder_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(encoder, str):
            kwargs = dict(encoder_kwargs)
            if model is not None:
                kwargs["model"] = model
            encoder = registry.encoder(encoder, **kwargs)
        assert isinstance(encoder, Encoder)
        self.encoder: Encoder = encoder
        self.index_obj = registry.vector_index(index, model_id=encoder.model_id) if isinstance(index, str) else index
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size = batch_size

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        if self.cache_dir is None:
            return self.encoder.encode_items(items, batch_size=self.batch_size)
        cache = EmbeddingCache(self.cache_dir, encoder_cache_id(self.encoder), on_mismatch="reset")
        keys = [item_key(it) for it in items]
        mask, found = cache.get_many(keys)
        todo = [it for it, m in zip(items, mask, strict=True) if not m]
        fresh = self.encoder.encode_items(todo, batch_size=self.batch_size) if todo else None
        if fresh is not None:
            cache.put_many([k for k, m in zip(keys, mask, strict=True) if not m], fresh)
            cache.save()
        dim = found.shape[1] if found.size else (fresh.shape[1] if fresh is not None else self.encoder.dim)
        out = np.zeros((len(items), dim), dtype=np.float32)
        if found.size:
            out[mask] = found
        if fresh is not None:
            out[~mask] = fresh
        return out

    def index(self, corpus: Corpus) -> DenseRetriever:
        self.corpus = corpus
        items = list(corpus.values())
        self.index_obj.add(self.encode_items(items), [it.id for it in items])
        return self

    def retrieve(self, queries: Sequence[Query], k: int = 100) -> Run:
        corpus = self._require_index()
        qv = self.encoder.encode_queries(queries, batch_size=self.batch_size)
        scores, ids = self.index_obj.search(qv, k)
        out = []
        for qi, q in enumerate(queries):
            hits = [Hit(d, float(s), corpus[d]) for d, s in zip(ids[qi], scores[qi], strict=False)]
            out.append(Ranking(q.id, hits, stage=f"{self.name}:{self.encoder.model_id}", query=q))
        return Run(out, name=self.name)
