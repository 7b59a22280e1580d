"""Search a folder index (made by :func:`mmrank.vision.index.index_folder`) with a text, an image or a composed
(image + text) query, optionally reranked with SuperGlobal feature refinement (arXiv 2308.06954).

A composed query (reference image + modification text) on an index built with a CLIP-style dual encoder is embedded
with the library's zero-shot composed query, ``cir-sum`` of :mod:`mmrank.cir.compose`:
``normalize((1 - alpha) * E_img(image) + alpha * E_txt(text))``, alpha = 0.65 (WeiMoCIR, Wu et al., arXiv
2409.04918; the q_vlm of SQUARE, arXiv 2509.26330). The method, alpha and paper are recorded in the ranking's
``meta["composed"]`` and its ``stage``. An index whose encoder reads images only (CNN) refuses it with
:class:`~mmrank.errors.DataFormatError` naming why (:meth:`ImageSearch.query_error`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.cir.compose import ALPHA, compose
from mmrank.encoders.base import Encoder
from mmrank.errors import DataFormatError, ImageLoadError, IndexCorruptError, OptionError
from mmrank.index.base import VectorIndex
from mmrank.index.fingerprint import encoder_cache_id
from mmrank.types import Hit, ImageSource, Item, Query, Ranking, Run
from mmrank.vision.index import encoder_from_spec, read_vision_manifest

COMPOSED_METHOD = "cir-sum"
COMPOSED_PAPER = "WeiMoCIR (Wu et al., arXiv 2409.04918); SQUARE q_vlm (arXiv 2509.26330)"


class ImageSearch:
    """A loaded folder index plus its encoder; :meth:`search` / :meth:`search_batch` answer text, image or composed
    queries (``compose_alpha``: the text weight of a composed query, see the module docstring).

    :attr:`encoder_calls` counts the encoder invocations made for queries (a batch of queries costs at most three:
    the plain queries, the composed queries' images, their texts), so a service can show what micro-batching saves.
    """

    kind = "images"

    def __init__(
        self,
        index_dir: str | Path,
        *,
        encoder: Encoder | None = None,
        device: str | None = None,
        compose_alpha: float = ALPHA,
    ) -> None:
        if not 0.0 <= float(compose_alpha) <= 1.0:
            raise OptionError(f"compose_alpha must lie in [0, 1], got {compose_alpha}")
        self.compose_alpha = float(compose_alpha)
        self.encoder_calls = 0
        d = Path(index_dir)
        for attempt in range(3):  # a re-index may publish a new manifest while this one is read: read again
            self.manifest, sub = read_vision_manifest(d)
            try:
                self.index = VectorIndex.load(sub)
                break
            except (IndexCorruptError, FileNotFoundError):
                if attempt == 2 or read_vision_manifest(d)[1] == sub:
                    raise
        self.root = Path(str(self.manifest["root"]))
        overrides = {"device": device} if device else {}
        self.encoder = encoder or encoder_from_spec(self.manifest["encoder"], **overrides)
        if self.encoder.model_id != self.index.model_id:
            raise DataFormatError(
                f"encoder {self.encoder.model_id!r} does not match the index's {self.index.model_id!r}"
            )
        built_with = self.manifest.get("encoder_cache_id")
        if built_with is not None and encoder is None and encoder_cache_id(self.encoder) != built_with:
            raise DataFormatError(
                f"{d}: the weights of {self.encoder.model_id!r} changed since this index was built "
                "(content fingerprint differs); run `mmrank index` again"
            )

    def item(self, item_id: str) -> Item:
        return Item(item_id, image=self.root / item_id)

    def query_error(self, query: Query) -> str | None:
        """Why this index cannot answer ``query`` (``None`` when it can)."""
        enc = self.encoder
        reads_text = hasattr(enc, "encode_texts")
        if _is_composed(query) and not (reads_text and hasattr(enc, "encode_images")):
            return (
                f"composed (image + text) queries need a CLIP-style encoder that embeds both images and text; "
                f"this image index's encoder {enc.model_id!r} embeds images only"
            )
        if query.image is None and not reads_text:
            return f"this image index's encoder {enc.model_id!r} embeds images only, not a text query; search by image"
        return None

    def query_vectors(self, queries: Sequence[Query]) -> tuple[np.ndarray, int]:
        """One unit vector per query and the number of encoder calls it took: plain (text or image) queries in
        one :meth:`encode_queries` call, composed ones as ``cir-sum`` of one image and one text encoding call."""
        for q in queries:
            why = self.query_error(q)
            if why is not None:
                raise DataFormatError(f"query {q.id!r}: {why}")
        plain = [i for i, q in enumerate(queries) if not _is_composed(q)]
        comp = [i for i, q in enumerate(queries) if _is_composed(q)]
        rows: dict[int, np.ndarray] = {}
        calls = 0
        if plain:
            pv = self.encoder.encode_queries([_plain(queries[i]) for i in plain])
            calls += 1
            rows.update(zip(plain, pv, strict=True))
        if comp:
            enc: Any = self.encoder
            imgs = enc.encode_images([queries[i].image for i in comp])
            if not imgs.ok.all():
                bad = [queries[comp[j]].id for j in np.flatnonzero(~imgs.ok)]
                raise ImageLoadError(f"image of query {', '.join(map(repr, bad))} unreadable: {imgs.warnings}")
            txts = enc.encode_texts([str(queries[i].text).strip() for i in comp])
            calls += 2
            rows.update(zip(comp, compose(imgs.full(), txts, self.compose_alpha), strict=True))
        self.encoder_calls += calls
        return np.stack([np.asarray(rows[i], dtype=np.float32) for i in range(len(queries))]), calls

    def search_batch(self, queries: Sequence[str | Query | ImageSource], k: int = 10) -> list[Ranking]:
        """Top-``k`` for several queries with at most three encoder calls in all (the service micro-batches into
        this). Each ranking's ``meta["batch"]`` says how many queries shared the calls and how many there were."""
        qs = [_as_query(q) for q in queries]
        qv, calls = self.query_vectors(qs)
        return self._rank(qs, qv, k, calls)

    def _rank(self, qs: list[Query], qv: np.ndarray, k: int, calls: int) -> list[Ranking]:
        scores, ids = self.index.search(qv, k)
        out = []
        for q, row_ids, row_scores in zip(qs, ids, np.asarray(scores), strict=True):
            hits = [Hit(i, float(s), self.item(i)) for i, s in zip(row_ids, row_scores, strict=True)]
            meta: dict[str, Any] = {"batch": {"queries": len(qs), "encoder_calls": calls}}
            stage = f"search:{self.encoder.model_id}"
            if _is_composed(q):
                stage = f"search:{COMPOSED_METHOD}(alpha={self.compose_alpha:g}):{self.encoder.model_id}"
                meta["composed"] = {
                    "method": COMPOSED_METHOD,
                    "alpha": self.compose_alpha,
                    "query": "normalize((1 - alpha) * E_img(image) + alpha * E_txt(text))",
                    "paper": COMPOSED_PAPER,
                }
            out.append(Ranking(q.id, hits, stage=stage, query=q, meta=meta))
        return out

    def search(
        self,
        query: str | Query | ImageSource,
        k: int = 10,
        *,
        rerank: bool = False,
        M: int = 400,
        K: int = 9,
        beta: float = 0.15,
    ) -> Ranking:
        """Top-``k`` items for a text (``str`` that is not an existing file), an image path / bytes / PIL image,
        or a :class:`Query` (composed when it has both). ``rerank=True`` retrieves the top ``M`` and reranks them
        with SuperGlobal."""
        q = _as_query(query)
        qv, calls = self.query_vectors([q])
        depth = max(k, M) if rerank else k
        ranking = self._rank([q], qv, depth, calls)[0]
        if rerank:
            from mmrank.globalfeat.rerank import SuperGlobalReranker

            if not hasattr(self.index, "vectors"):
                raise DataFormatError(f"reranking needs stored vectors; the {self.index.kind!r} index has none")
            q.meta["vector"] = qv[0]
            rr = SuperGlobalReranker.from_index(self.index, encoder=self.encoder, M=M, K=K, beta=beta)
            ranking = rr.rerank(None, Run([ranking]))[q.id]
        return ranking.top(k)


def _is_composed(q: Query) -> bool:
    return q.image is not None and bool(q.text and q.text.strip())


def _plain(q: Query) -> Query:
    """An image query whose text is blank loses the blank text (the encoders would refuse it as composed)."""
    return Query(q.id, image=q.image, meta=q.meta) if q.image is not None and q.text is not None else q


def _as_query(query: str | Query | ImageSource) -> Query:
    if isinstance(query, Query):
        return query
    if isinstance(query, (bytes, Path)):
        return Query("query", image=query, meta={"label": Path(query).name if isinstance(query, Path) else "image"})
    if isinstance(query, str):
        if Path(query).is_file():
            return Query("query", image=query, meta={"label": Path(query).name})
        return Query("query", text=query)
    return Query("query", image=query, meta={"label": "image"})


def search(index_dir: str | Path, query: str | Query | ImageSource, k: int = 10, **kwargs: Any) -> Ranking:
    """One-shot :class:`ImageSearch` (reloads the index; keep an :class:`ImageSearch` for many queries)."""
    rerank_kw = {key: kwargs.pop(key) for key in ("rerank", "M", "K", "beta") if key in kwargs}
    return ImageSearch(index_dir, **kwargs).search(query, k, **rerank_kw)
