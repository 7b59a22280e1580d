"""Search a folder index (made by :func:`mmrank.vision.index.index_folder`) with a text or an image query,
optionally reranked with SuperGlobal feature refinement (arXiv 2308.06954)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmrank.encoders.base import Encoder
from mmrank.errors import DataFormatError, IndexCorruptError
from mmrank.index.base import VectorIndex
from mmrank.index.fingerprint import encoder_cache_id
from mmrank.types import Hit, ImageSource, Item, Query, Ranking, Run
from mmrank.vision.index import encoder_from_spec, read_vision_manifest


class ImageSearch:
    """A loaded folder index plus its encoder; :meth:`search` answers text or image queries."""

    kind = "images"

    def __init__(self, index_dir: str | Path, *, encoder: Encoder | None = None, device: str | None = None) -> None:
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
        or a :class:`Query`. ``rerank=True`` retrieves the top ``M`` and reranks them with SuperGlobal."""
        q = _as_query(query)
        qv = self.encoder.encode_queries([q])
        depth = max(k, M) if rerank else k
        scores, ids = self.index.search(qv, depth)
        hits = [Hit(i, float(s), self.item(i)) for i, s in zip(ids[0], scores[0], strict=True)]
        ranking = Ranking(q.id, hits, stage=f"search:{self.encoder.model_id}", query=q)
        if rerank:
            from mmrank.globalfeat.rerank import SuperGlobalReranker

            if not hasattr(self.index, "vectors"):
                raise DataFormatError(f"reranking needs stored vectors; the {self.index.kind!r} index has none")
            q.meta["vector"] = qv[0]
            rr = SuperGlobalReranker.from_index(self.index, encoder=self.encoder, M=M, K=K, beta=beta)
            ranking = rr.rerank(None, Run([ranking]))[q.id]
        return ranking.top(k)


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
