"""A saved text-corpus index (marker ``mmrank_text.json``): BM25 (bm25s) or dense (any text encoder, e.g. MiniLM).

Layout: ``items-<id>.jsonl`` (the corpus: id, title, text), for dense also ``index-<id>/`` (a saved
:class:`~mmrank.index.base.VectorIndex`), and the marker naming them, published last through
:class:`mmrank.index.store.Writer` (one atomic commit). BM25 statistics are rebuilt from the stored items at open
(bm25s indexes ~100k short passages in seconds; no pickle is ever read).

:func:`index_corpus` with ``engine="ray"`` encodes the corpus as a Ray Data pipeline (:mod:`mmrank.scale.ray_engine`)
and writes the same files; results equal the single-process path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError, IndexCorruptError, OptionError
from mmrank.index import store
from mmrank.types import Corpus, Hit, Item, Query, Ranking

MARKER = "mmrank_text.json"
KINDS = ("bm25", "dense")


@dataclass
class TextIndexReport:
    out_dir: Path
    count: int
    retriever: str
    engine: str
    seconds: float

    def summary(self) -> str:
        return (
            f"indexed {self.count} texts ({self.retriever}, engine {self.engine}) into {self.out_dir} "
            f"in {self.seconds:.1f}s"
        )


def _items_jsonl(corpus: Corpus) -> bytes:
    lines = [
        json.dumps({"id": it.id, "title": it.title, "text": it.text}, ensure_ascii=False) for it in corpus.values()
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def encoder_spec_for(model: str | None, encoder: str = "sentence-transformers") -> dict[str, Any]:
    return {"name": encoder, "kwargs": {"model": model} if model else {}}


def index_corpus(
    corpus: Corpus | str | Path,
    out_dir: str | Path,
    *,
    retriever: str = "bm25",
    model: str | None = None,
    encoder: str = "sentence-transformers",
    batch_size: int = 64,
    engine: str = "local",
    ray_address: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> TextIndexReport:
    """Index a corpus (a :class:`Corpus`, BEIR folder or JSONL) into ``out_dir`` as a BM25 or dense text index."""
    import time

    from mmrank import registry
    from mmrank.vision.index import encoder_from_spec

    if retriever not in KINDS:
        raise OptionError(f"text index retriever must be one of {', '.join(KINDS)}, got {retriever!r}")
    if engine not in ("local", "ray"):
        raise OptionError(f"engine must be 'local' or 'ray', got {engine!r}")
    if engine == "ray" and retriever != "dense":
        raise OptionError("--engine ray encodes with a model: use it with a dense index (BM25 has no model to spread)")
    if not isinstance(corpus, Corpus):
        from mmrank.io import load_corpus

        corpus = load_corpus(corpus)
    if len(corpus) == 0:
        raise DataFormatError("cannot index an empty corpus")
    t0 = time.perf_counter()
    out = Path(out_dir)
    manifest: dict[str, Any] = {"retriever": retriever, "count": len(corpus), "engine": engine}
    items = list(corpus.values())
    with store.writer(out, manifest=MARKER, overwrite=overwrite) as w:
        files = {"items": w.blob("items", ".jsonl", _items_jsonl(corpus))}
        if retriever == "bm25":
            from mmrank.retrieve.bm25 import BM25Retriever

            BM25Retriever().index(corpus)  # refuse a corpus BM25 cannot index now, not at open
        else:
            spec = encoder_spec_for(model, encoder)
            if engine == "ray":
                from mmrank.scale.ray_engine import encode_items_ray

                staging = w.path("shards")
                vectors, model_id = encode_items_ray(
                    items, spec, staging, batch_size=batch_size, workers=workers, address=ray_address
                )
            else:
                enc = encoder_from_spec(spec)
                vectors, model_id = enc.encode_items(items, batch_size=batch_size), enc.model_id
            idx = registry.vector_index("exact", model_id=model_id)
            idx.add(vectors, [it.id for it in items])
            sub = w.path("index")
            idx.save(sub)
            files["index"] = sub.name
            manifest["encoder"] = spec
        w.commit({**manifest, "files": files})
    return TextIndexReport(out, len(corpus), retriever, engine, time.perf_counter() - t0)


class TextSearch:
    """An opened text index: :meth:`search` / :meth:`search_batch` answer text queries; :meth:`item` looks up ids."""

    kind = "text"

    def __init__(self, index_dir: str | Path, *, device: str | None = None) -> None:
        from mmrank.io.jsonl import read_items_jsonl

        d = Path(index_dir)
        self.root = d
        self.manifest = store.read_manifest(d, name=MARKER, required=("items",))
        paths = store.manifest_files(d, self.manifest)
        self.corpus = read_items_jsonl(paths["items"])
        self.retriever = str(self.manifest.get("retriever"))
        if self.retriever == "bm25":
            from mmrank.retrieve.bm25 import BM25Retriever

            self._bm25 = BM25Retriever().index(self.corpus)
        elif self.retriever == "dense":
            from mmrank.index.base import VectorIndex
            from mmrank.vision.index import encoder_from_spec

            if "index" not in paths:
                raise IndexCorruptError(f"{d}: dense text index names no vector index")
            self.index = VectorIndex.load(paths["index"])
            overrides = {"device": device} if device else {}
            self.encoder = encoder_from_spec(self.manifest.get("encoder", {}), **overrides)
        else:
            raise IndexCorruptError(f"{d}/{MARKER}: unknown retriever {self.retriever!r}")

    def item(self, item_id: str) -> Item:
        try:
            return self.corpus[item_id]
        except KeyError:
            raise DataFormatError(f"no item {item_id!r} in this index") from None

    def query_error(self, query: Query) -> str | None:
        """Why this index cannot answer ``query`` (``None`` when it can): it reads text only."""
        if query.image is not None:
            return (
                "a text index reads text only and cannot use the query's image; image and composed (image + text) "
                "queries need an image index built with a CLIP-style encoder"
            )
        if not query.text:
            return "a text index answers text queries; this query has no text"
        return None

    def search(self, query: str | Query, k: int = 10) -> Ranking:
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str | Query], k: int = 10) -> list[Ranking]:
        """Top-``k`` for several queries in one model call (the service micro-batches into this)."""
        qs = [q if isinstance(q, Query) else Query(f"q{i}", text=q) for i, q in enumerate(queries)]
        for q in qs:
            why = self.query_error(q)
            if why is not None:
                raise DataFormatError(f"query {q.id!r}: {why}")
        if self.retriever == "bm25":  # unique ids inside the batch: concurrent requests may share one
            run = self._bm25.retrieve([Query(f"__{i}", text=q.text) for i, q in enumerate(qs)], k=k)
            return [replace(run[f"__{i}"], query_id=q.id, query=q) for i, q in enumerate(qs)]
        qv = self.encoder.encode_queries(qs)
        scores, ids = self.index.search(qv, min(k, len(self.index)))
        out = []
        for q, row_ids, row_scores in zip(qs, ids, np.asarray(scores), strict=True):
            hits = [Hit(i, float(s), self.corpus[i]) for i, s in zip(row_ids, row_scores, strict=True)]
            out.append(Ranking(q.id, hits, stage=f"dense:{self.encoder.model_id}", model_calls=1, query=q))
        return out
