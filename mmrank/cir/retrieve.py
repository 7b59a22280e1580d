"""Zero-shot composed image retrieval over a CLIP dual encoder (open-clip / hf-clip).

One retriever, five ways to build the query embedding from a composed query (reference image + modification text):

* ``image``   -- E_img(I_ref): the reference image alone (lower bound used by every CIR paper).
* ``text``    -- E_txt(T_mod): the modification text alone.
* ``sum``     -- normalize((1 - alpha) E_img + alpha E_txt), alpha = 0.65 (WeiMoCIR, arXiv 2409.04918; SQUARE's
  q_vlm, arXiv 2509.26330). alpha = 0.5 is the plain "image + text" baseline of Pic2Word / SEARLE.
* ``caption`` -- E_txt(caption): a VLM describes the target image (:class:`~mmrank.cir.captioner.TargetCaptioner`)
  and the caption's text embedding searches alone (the CIReVL-style caption baseline, arXiv 2310.09291).
* ``sqaf``    -- SQUARE's Semantic Query-Augmented Fusion: normalize((1 - beta) q_sum + beta E_txt(caption)).

The gallery is encoded once (batch-safe: an unreadable image is skipped and listed in :attr:`skipped`), optionally
through a content-keyed embedding cache. ``query.meta["exclude"]`` (a list of ids) removes images from that query's
ranking -- CIRR removes the reference image. An empty modification text falls back to the reference image alone
(recorded in ``Ranking.fallbacks``); a reference image that cannot be decoded raises
:class:`~mmrank.errors.ImageLoadError` naming the query. With ``caption`` / ``sqaf`` the caption is kept in
``ranking.query.meta["target_caption"]`` (SQAF's retrieval is interpretable through it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mmrank import registry
from mmrank.cir.captioner import TargetCaptioner
from mmrank.cir.compose import ALPHA, BETA, compose, fuse_caption
from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.index.base import VectorIndex
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Hit, Query, Ranking, Run

MODES = ("image", "text", "sum", "caption", "sqaf")
_EMPTY = "empty modification text: searched with the reference image alone"


class ComposedRetriever(Retriever):
    """Composed-query retrieval (``mode`` in :data:`MODES`) over a CLIP encoder and a vector index."""

    def __init__(
        self,
        encoder: Any = "open-clip",
        *,
        model: str | None = None,
        mode: str = "sum",
        alpha: float = ALPHA,
        beta: float = BETA,
        vlm: Any = None,
        captioner: TargetCaptioner | None = None,
        index: VectorIndex | str = "exact",
        cache_dir: str | Path | None = None,
        batch_size: int | None = None,
        caption_prompt: str = "sqaf_caption",
        **encoder_kwargs: Any,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown composed-retrieval mode {mode!r}; known: {', '.join(MODES)}")
        if isinstance(encoder, str):
            kw = dict(encoder_kwargs)
            if model is not None:
                kw["model"] = model
            encoder = registry.encoder(encoder, **kw)
        if not (hasattr(encoder, "encode_images") and hasattr(encoder, "encode_texts")):
            raise ValueError(f"{type(encoder).__name__} is not a text/image dual encoder (CLIP-style)")
        self.encoder = encoder
        self.mode = mode
        self.alpha, self.beta = float(alpha), float(beta)
        compose(np.ones((1, 2)), np.ones((1, 2)), self.alpha)  # validates the weights early
        compose(np.ones((1, 2)), np.ones((1, 2)), self.beta)
        if mode in ("caption", "sqaf") and captioner is None:
            if vlm is None:
                raise ValueError(f"mode {mode!r} needs a VLM (vlm=...) or a captioner to describe the target")
            captioner = TargetCaptioner(vlm, prompt=caption_prompt)
        self.captioner = captioner
        model_id = getattr(encoder, "model_id", type(encoder).__name__)
        self.index_obj = registry.vector_index(index, model_id=model_id) if isinstance(index, str) else index
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size = batch_size
        self.skipped: dict[str, str] = {}
        self.name = "sqaf" if mode == "sqaf" else f"cir-{mode}"

    # --- gallery ---------------------------------------------------------------------------------------
    def _encode_gallery(self, ids: list[str], sources: list[Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        enc = self.encoder.encode_images(sources, batch_size=self.batch_size)
        return enc.full(), enc.ok, enc.warnings

    def index(self, corpus: Corpus) -> ComposedRetriever:
        """Encode the gallery images (items without an image or with an unreadable one are skipped, recorded)."""
        self.corpus = corpus
        self.skipped = {}
        ids, sources = [], []
        for it in corpus.values():
            if it.image is None:
                self.skipped[it.id] = "no image"
                continue
            ids.append(it.id)
            sources.append(it.image)
        if self.cache_dir is not None:
            vecs, ok, warns = self._encode_cached(corpus, ids, sources)
        else:
            vecs, ok, warns = self._encode_gallery(ids, sources)
        bad = [i for i, good in zip(ids, ok, strict=True) if not good]
        for i, w in zip(bad, warns + [""] * len(bad), strict=False):
            self.skipped[i] = w or "could not be encoded"
        if not ok.any():
            raise ImageLoadError(f"corpus {corpus.name!r}: no gallery image could be encoded")
        keep = np.flatnonzero(ok)
        self.index_obj.add(vecs[keep], [ids[i] for i in keep])
        return self

    def _encode_cached(self, corpus: Corpus, ids: list[str], sources: list[Any]) -> tuple:
        from mmrank.index.cache import EmbeddingCache
        from mmrank.retrieve.dense import item_key

        assert self.cache_dir is not None
        cache = EmbeddingCache(self.cache_dir, getattr(self.encoder, "model_id", "clip"))
        keys = []
        for i in ids:
            try:
                keys.append(item_key(corpus[i]))
            except OSError:
                keys.append("")  # unreadable file: never cached, reported by the encoder below
        mask, found = cache.get_many(keys)
        todo = [j for j, m in enumerate(mask) if not m]
        dim = found.shape[1] if found.size else int(self.encoder.dim)
        vecs = np.zeros((len(ids), dim), dtype=np.float32)
        ok = np.asarray(mask, dtype=bool).copy()
        if found.size:
            vecs[mask] = found
        warns: list[str] = []
        if todo:
            fresh, fok, warns = self._encode_gallery([ids[j] for j in todo], [sources[j] for j in todo])
            for j, v, good in zip(todo, fresh, fok, strict=True):
                vecs[j], ok[j] = v, good
            done = [j for j, good in zip(todo, fok, strict=True) if good and keys[j]]
            if done:
                cache.put_many([keys[j] for j in done], vecs[done])
                cache.save()
        return vecs, ok, warns

    # --- queries ---------------------------------------------------------------------------------------
    def query_vectors(self, queries: Sequence[Query]) -> tuple[np.ndarray, list[list[str]], list[str | None], list]:
        """``(vectors, fallbacks, captions, calls)`` per query for the configured mode."""
        n = len(queries)
        texts = [(q.text or "").strip() for q in queries]
        fallbacks: list[list[str]] = [[] for _ in queries]
        need_img = [q.image is not None and (self.mode != "text" or not texts[i]) for i, q in enumerate(queries)]
        for i, q in enumerate(queries):
            if q.image is None and (self.mode != "text" or not texts[i]):
                raise DataFormatError(f"query {q.id!r}: mode {self.mode!r} needs a reference image")
        img = np.zeros((n, self.encoder.dim), dtype=np.float32)
        rows = [i for i in range(n) if need_img[i]]
        if rows:
            enc = self.encoder.encode_images([queries[i].image for i in rows], batch_size=self.batch_size)
            if not enc.ok.all():
                bad = [queries[rows[j]].id for j in np.flatnonzero(~enc.ok)]
                raise ImageLoadError(f"reference image of query {', '.join(map(repr, bad))} unreadable: {enc.warnings}")
            img[rows] = enc.full()
        txt = np.zeros_like(img)
        trows = [i for i in range(n) if texts[i]]
        if trows and self.mode in ("text", "sum", "sqaf"):
            txt[trows] = self.encoder.encode_texts([texts[i] for i in trows], batch_size=self.batch_size)
        captions: list[str | None] = [None] * n
        calls = [0] * n
        cap_emb = np.zeros_like(img)
        if self.mode in ("caption", "sqaf"):
            assert self.captioner is not None
            caps, cfb, calls = self.captioner.caption(queries)
            for i, c in enumerate(caps):
                fallbacks[i] += cfb[i]
                captions[i] = c or None
            crows = [i for i in range(n) if caps[i]]
            if crows:
                cap_emb[crows] = self.encoder.encode_texts([caps[i] for i in crows], batch_size=self.batch_size)
        out = np.zeros_like(img)
        for i in range(n):
            if self.mode == "image":
                out[i] = img[i]
            elif self.mode == "text":
                out[i] = txt[i] if texts[i] else img[i]
            elif self.mode == "sum":
                out[i] = compose(img[i : i + 1], txt[i : i + 1], self.alpha)[0] if texts[i] else img[i]
            elif self.mode == "caption":
                out[i] = cap_emb[i] if captions[i] else img[i]
            else:
                base = compose(img[i : i + 1], txt[i : i + 1], self.alpha) if texts[i] else img[i : i + 1]
                out[i] = fuse_caption(base, cap_emb[i : i + 1], self.beta)[0] if captions[i] else base[0]
            if not texts[i] and self.mode != "image":
                fallbacks[i].append(_EMPTY)
        return out, fallbacks, captions, calls

    def retrieve(self, queries: Sequence[Query], k: int | None = 100) -> Run:
        """Top-``k`` gallery images per composed query (after removing ``query.meta["exclude"]`` ids);
        ``k=None`` ranks the whole gallery."""
        corpus = self._require_index()
        full = k is None
        k = len(self.index_obj) if k is None else k
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        qv, fallbacks, captions, calls = self.query_vectors(queries)
        excludes = [set(map(str, q.meta.get("exclude", ()))) for q in queries]
        extra = max((len(e) for e in excludes), default=0)
        scores, ids = self.index_obj.search(qv, k + extra)
        out = []
        stage = f"{self.name}:{getattr(self.encoder, 'model_id', '')}"
        for qi, q in enumerate(queries):
            hits = [
                Hit(d, float(s), corpus[d]) for d, s in zip(ids[qi], scores[qi], strict=True) if d not in excludes[qi]
            ]
            fb = list(fallbacks[qi])
            if not full and len(hits) < k and len(self.index_obj) - len(excludes[qi]) < k:
                fb.append(f"k={k} exceeds the gallery: returned all {len(hits[:k])} images")
            if captions[qi]:
                q = replace(q, meta={**q.meta, "target_caption": captions[qi]})
            out.append(Ranking(q.id, hits[:k], stage=stage, model_calls=calls[qi], fallbacks=fb, query=q))
        return Run(out, name=self.name)


def image_only(**kwargs: Any) -> ComposedRetriever:
    """Composed-query baseline: the reference image alone."""
    return ComposedRetriever(mode="image", **kwargs)


def text_only(**kwargs: Any) -> ComposedRetriever:
    """Composed-query baseline: the modification text alone."""
    return ComposedRetriever(mode="text", **kwargs)


def weighted_sum(**kwargs: Any) -> ComposedRetriever:
    """normalize((1 - alpha) E_img + alpha E_txt), alpha = 0.65 (WeiMoCIR arXiv 2409.04918; SQUARE q_vlm)."""
    return ComposedRetriever(mode="sum", **kwargs)


def caption_search(**kwargs: Any) -> ComposedRetriever:
    """A VLM captions the target; its CLIP text embedding searches."""
    return ComposedRetriever(mode="caption", **kwargs)


def sqaf(**kwargs: Any) -> ComposedRetriever:
    """SQUARE stage 1, SQAF (arXiv 2509.26330): composed query fused with the target caption's embedding."""
    return ComposedRetriever(mode="sqaf", **kwargs)
