"""Multi-vector (late-interaction) encoders for page images and text queries: ColPali and ColQwen2.

ColPali (Faysse et al., "ColPali: Efficient Document Retrieval with Vision Language Models", arXiv 2407.01449)
embeds a page *screenshot* with a VLM and keeps one L2-normalised 128-d vector per output token (image patches plus
the prompt tokens); a query keeps one vector per text token (plus the processor's 10 query-augmentation tokens). The
two are compared with ColBERT's MaxSim (Khattab & Zaharia, arXiv 2004.12832), see :mod:`mmrank.index.maxsim`.

This module runs transformers' native ``ColPaliForRetrieval`` / ``ColQwen2ForRetrieval`` and their processors (the
``-hf`` checkpoints, e.g. ``vidore/colpali-v1.3-hf``, ``vidore/colqwen2-v1.0-hf``) by hub id or local folder; the
processor's own prompts (``visual_prompt_prefix``, ``query_prefix``, augmentation tokens) are used unchanged.
Each output matrix keeps exactly the positions whose attention mask is 1 (padding is dropped), as ``float32``.

Images are encoded in batches sorted by pixel count (ColQwen2's token count grows with the image size), queries in
batches sorted by length; outputs come back in input order. On CUDA the model runs in bfloat16 (``dtype="auto"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmrank.errors import (
    ContextLengthError,
    DataFormatError,
    ImageLoadError,
    MissingDependencyError,
    ModelLoadError,
)
from mmrank.types import Item, Query

_FAMILIES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
}


def detect_family(model: str) -> str | None:
    """``"colpali"`` / ``"colqwen2"`` from a local folder's ``config.json`` ``model_type``; None if unknown."""
    import json

    cfg = Path(model).expanduser() / "config.json"
    if not cfg.is_file():
        return None
    try:
        kind = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None
    return kind if kind in _FAMILIES else None


class MultiVectorEncoder:
    """ColPali / ColQwen2 through transformers: ``encode_items`` / ``encode_queries`` -> list of ``(n_i, dim)``.

    ``family`` is ``"colpali"`` or ``"colqwen2"`` (subclasses fix it). ``max_query_tokens`` is the query budget
    (processor prompt and augmentation tokens included); a longer query raises :class:`ContextLengthError`
    [gap: neither paper states a query cap; default: the text model's ``max_position_embeddings``].
    """

    default_family: ClassVar[str] = ""

    def __init__(
        self,
        model: str,
        *,
        family: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 4,
        query_batch_size: int = 32,
        max_query_tokens: int | None = None,
    ) -> None:
        import torch

        from mmrank.llm import loading

        fam = family or self.default_family or detect_family(model)
        if fam not in _FAMILIES:
            raise DataFormatError(f"unknown multi-vector family {fam!r}; use one of {', '.join(_FAMILIES)}")
        self.family: str = fam
        import transformers

        try:
            model_cls, proc_cls = (getattr(transformers, n) for n in _FAMILIES[fam])
        except AttributeError as e:
            raise MissingDependencyError(
                f"{fam} needs transformers' native {_FAMILIES[fam][0]} (transformers >= 4.53); "
                f"installed: {transformers.__version__}"
            ) from e
        self.device = loading.resolve_device(device)
        self.dtype = loading.resolve_dtype(dtype, self.device)
        self.model = loading.load_model(model_cls, str(model), device=self.device, dtype=self.dtype)
        self.processor = loading.from_pretrained(proc_cls.from_pretrained, str(model), what="processor of model")
        self.model_id = str(model)
        self.dim = int(self.model.config.embedding_dim)
        self.batch_size = batch_size
        self.query_batch_size = query_batch_size
        text_cfg = self.model.config.get_text_config()
        self.max_query_tokens = max_query_tokens or int(getattr(text_cfg, "max_position_embeddings", 0) or 0) or None
        self._torch = torch

    # --- core -------------------------------------------------------------------------------------
    def _forward(self, batch: Any) -> list[np.ndarray]:
        torch = self._torch
        mask = batch["attention_mask"].bool()
        drop = ("labels",) if self.family == "colpali" else ("labels", "token_type_ids")  # PaliGemma: prefix mask
        inputs = {k: v.to(self.device) for k, v in batch.items() if k not in drop}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            emb = self.model(**inputs).embeddings.float().cpu().numpy()
        m = mask.numpy()
        return [np.ascontiguousarray(emb[i][m[i]]) for i in range(emb.shape[0])]

    def encode_images(self, images: Sequence[Any], *, batch_size: int | None = None) -> list[np.ndarray]:
        """PIL images -> one ``(n_tokens, dim)`` float32 matrix each (batched by pixel count)."""
        bs = batch_size or self.batch_size
        order = sorted(range(len(images)), key=lambda i: images[i].width * images[i].height)
        out: list[np.ndarray | None] = [None] * len(images)
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            batch = self.processor.process_images([images[i] for i in idx])
            for i, m in zip(idx, self._forward(batch), strict=True):
                out[i] = m
        return [m for m in out if m is not None]

    def encode_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[np.ndarray]:
        """Query strings -> one ``(n_tokens, dim)`` matrix each (batched by length, budget checked)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise DataFormatError(f"query {i} is empty; a multi-vector query needs text")
        bs = batch_size or self.query_batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray | None] = [None] * len(texts)
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            batch = self.processor.process_queries([texts[i] for i in idx])
            if self.max_query_tokens is not None:
                lengths = batch["attention_mask"].sum(1).tolist()
                for i, n in zip(idx, lengths, strict=True):
                    if n > self.max_query_tokens:
                        raise ContextLengthError(
                            f"query {i} is {n} tokens with the processor's prompt; the budget is "
                            f"{self.max_query_tokens} (max_query_tokens)"
                        )
            for i, m in zip(idx, self._forward(batch), strict=True):
                out[i] = m
        return [m for m in out if m is not None]

    # --- mmrank data model ------------------------------------------------------------------------
    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> list[np.ndarray]:
        """Text queries (an image-only or composed query is refused: these models score text against pages)."""
        texts = []
        for q in queries:
            if q.image is not None or not q.text:
                raise DataFormatError(f"query {q.id!r}: {self.family} retrieval takes text queries only")
            texts.append(q.text)
        return self.encode_texts(texts, batch_size=batch_size)

    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> list[np.ndarray]:
        """Items with an image (pages rendered lazily by ``item.load_image()``); a failing image raises
        :class:`ImageLoadError` naming the item (:func:`load_images` skips and reports instead)."""
        images, bad = load_images(items)
        if bad:
            item_id, why = bad[0]
            raise ImageLoadError(f"item {item_id!r}: {why}")
        return self.encode_images(images, batch_size=batch_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, dim={self.dim}, device={self.device})"


def load_images(items: Sequence[Item]) -> tuple[list[Any], list[tuple[str, str]]]:
    """Decode every item's image; returns ``(images of the good items, [(bad item id, reason), ...])``."""
    images, bad = [], []
    for it in items:
        try:
            images.append(it.load_image())
        except ImageLoadError as e:
            bad.append((it.id, str(e)))
        except Exception as e:  # a page renderer may fail in its own way
            bad.append((it.id, f"{type(e).__name__}: {e}"))
    return images, bad


class ColPaliEncoder(MultiVectorEncoder):
    """ColPali (PaliGemma-3B, arXiv 2407.01449) via ``ColPaliForRetrieval``; e.g. ``vidore/colpali-v1.3-hf``."""

    default_family = "colpali"


class ColQwen2Encoder(MultiVectorEncoder):
    """ColQwen2 (Qwen2-VL-2B, ColPali paper's family) via ``ColQwen2ForRetrieval``; e.g. ``vidore/colqwen2-v1.0-hf``."""

    default_family = "colqwen2"


def get_multivector_encoder(name: str, model: str, **kw: Any) -> MultiVectorEncoder:
    """``"colpali"`` / ``"colqwen2"`` / ``"auto"`` (from the folder's config) -> an encoder."""
    name = name.lower()
    if name == "auto":
        fam = detect_family(model)
        if fam is None:
            raise ModelLoadError(f"{model!r}: cannot tell ColPali from ColQwen2; pass the encoder name")
        name = fam
    if name not in _FAMILIES:
        raise DataFormatError(f"unknown multi-vector encoder {name!r}; use colpali or colqwen2")
    return MultiVectorEncoder(model, family=name, **kw)
