"""A page index: a folder of PDFs read once (text layer / OCR per page) and saved, then searched by BM25 over page
text -- or, when built with a text encoder, by the RRF fusion of BM25 and dense page vectors. Its marker file
``mmrank_pages.json`` is the commit point (atomic, locked saves through :mod:`mmrank.index.store`), so
:func:`mmrank.collection.open_index` opens it like any other index family.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.docs.pages import PageImage, load_pdf_folder, pdf_pages
from mmrank.errors import DataFormatError, IndexCorruptError
from mmrank.index import store
from mmrank.types import Corpus, Hit, Item, PageRef, Query, Ranking

MARKER = "mmrank_pages.json"


@dataclass
class PageIndexReport:
    out_dir: Path
    pages: int
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        bad = f", {len(self.failed)} PDFs skipped" if self.failed else ""
        return f"indexed {self.pages} pages into {self.out_dir}{bad}"


def index_pdfs(
    source: str | Path,
    out: str | Path,
    *,
    encoder: Any = None,
    ocr: str = "auto",
    dpi: float = 150,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> PageIndexReport:
    """Read a PDF or a folder of PDFs and save a page index to ``out``. ``encoder`` (a text encoder or a registry
    name such as ``"sentence-transformers"``) adds dense page vectors for hybrid search."""
    src = Path(source).resolve()
    kw: dict[str, Any] = {"ocr": ocr, "dpi": dpi, "cache_dir": cache_dir}
    if src.is_dir():
        pages = load_pdf_folder(src, progress=progress, **kw)
        root = src
    else:
        pages = pdf_pages(src, **kw)
        root = src.parent
    if not pages.items:
        raise DataFormatError(f"no readable page in {src}", src)
    records = [
        {"id": it.id, "doc": it.page.doc_id, "page": it.page.page, "text": it.text, "source": it.meta["text_source"]}
        | {k: it.meta[k] for k in ("render_dpi", "fallbacks") if k in it.meta}
        for it in pages.items
        if it.page is not None
    ]
    enc = None
    if encoder is not None:
        from mmrank import registry

        enc = registry.encoder(encoder) if isinstance(encoder, str) else encoder
    with store.writer(out, manifest=MARKER, overwrite=overwrite) as w:
        files = {"pages": w.blob("pages", ".json", json.dumps(records).encode())}
        manifest: dict[str, Any] = {"kind": "pages", "root": str(root), "count": len(records), "dpi": dpi}
        if enc is not None:
            vecs = enc.encode_items([Item(r["id"], text=r["text"] or " ") for r in records]).astype(np.float32)
            files["vectors"] = w.array("vectors", vecs)
            from mmrank.vision.index import encoder_spec

            manifest["encoder"] = encoder_spec(enc)
        manifest["files"] = files
        w.commit(manifest)
    return PageIndexReport(Path(out), len(records), pages.failed, pages.warnings)


class PageCollection:
    """An opened page index: :meth:`search` (BM25, or BM25 + dense RRF) and :meth:`item` (a lazy page item)."""

    kind = "pages"

    def __init__(self, index_dir: str | Path, *, encoder: Any = None, qa_model: Any = None, **_: Any) -> None:
        d = Path(index_dir)
        self.manifest = store.read_manifest(d, name=MARKER, required=("pages",))
        files = store.manifest_files(d, self.manifest, where=str(d / MARKER))
        try:
            records = json.loads(files["pages"].read_text())
        except (KeyError, ValueError) as e:
            raise IndexCorruptError(f"{d}: page list unreadable ({e})") from e
        if len(records) != self.manifest.get("count"):
            raise IndexCorruptError(f"{d}: {len(records)} pages but the manifest says {self.manifest.get('count')}")
        self.root = Path(str(self.manifest["root"]))
        self.dpi = float(self.manifest.get("dpi", 150))
        self.items = [self._item(r) for r in records]
        self.by_id = {it.id: it for it in self.items}
        from mmrank.retrieve.bm25 import BM25Retriever

        self.bm25 = BM25Retriever().index(Corpus(self.items))
        self.vectors = None
        self.encoder = None
        if "vectors" in files:
            self.vectors = store.read_array(d, files["vectors"].name, shape=(len(records), None))
            if encoder is None:
                from mmrank.vision.index import encoder_from_spec

                encoder = encoder_from_spec(self.manifest["encoder"])
            self.encoder = encoder

        self.qa_model = qa_model
        if qa_model is not None:  # the service offers POST /ask on collections that have ``ask``
            self.ask = self._ask

    def _ask(self, question: str, k: int = 3) -> Any:
        """Answer ``question`` from the top-``k`` pages (this index's search), citing them (:mod:`mmrank.docs.qa`)."""
        from mmrank.docs.qa import answer_from_pages, load_answerer

        if isinstance(self.qa_model, str):
            self.qa_model = load_answerer(self.qa_model)
        hits = self.search(question, k=k).hits
        if not hits:
            from mmrank.docs.qa import Answer

            return Answer(question, "Not answerable", [], getattr(self.qa_model, "name", ""), ["no page matched"])
        return answer_from_pages(question, hits, self.qa_model)

    def _item(self, r: dict[str, Any]) -> Item:
        path = self.root / r["doc"]
        return Item(
            r["id"],
            text=r["text"],
            image=PageImage(str(path), int(r["page"]), self.dpi),
            page=PageRef(r["doc"], int(r["page"])),
            meta={"text_source": r["source"]} | {k: r[k] for k in ("render_dpi", "fallbacks") if k in r},
        )

    def item(self, item_id: str) -> Item:
        try:
            return self.by_id[item_id]
        except KeyError as e:
            raise DataFormatError(f"no page {item_id!r} in this index") from e

    def query_error(self, query: Query) -> str | None:
        """Why this index cannot answer ``query`` (``None`` when it can): it searches the pages' text."""
        if query.image is not None:
            return (
                "a page index searches the pages' text and cannot use the query's image; image and composed "
                "(image + text) queries need an image index built with a CLIP-style encoder"
            )
        if not query.text:
            return "page search needs a text query"
        return None

    def search(self, query: Query | str, k: int = 10, *, doc_id: str | None = None) -> Ranking:
        """Top-``k`` pages for a text query, across the collection or within ``doc_id``."""
        q = Query("query", text=query) if isinstance(query, str) else query
        why = self.query_error(q)
        if why is not None:
            raise DataFormatError(why)
        depth = len(self.items) if doc_id is not None else max(k, 100)
        bm = self.bm25.retrieve([q], k=depth)[q.id]
        ranking = bm
        if self.vectors is not None and self.encoder is not None:
            from mmrank.fusion import rrf

            qv = self.encoder.encode_queries([q])[0]
            s = self.vectors @ qv
            top = np.argsort(-s, kind="stable")[:depth]
            dense = Ranking(q.id, [Hit(self.items[j].id, float(s[j]), self.items[j]) for j in top], query=q)
            ranking = Ranking(q.id, rrf([bm, dense]), stage="pages:bm25+dense-rrf", query=q)
        hits = [h for h in ranking.hits if doc_id is None or (h.item and h.item.page and h.item.page.doc_id == doc_id)]
        return Ranking(q.id, hits[:k], stage=ranking.stage or "pages:bm25", query=q, fallbacks=list(bm.fallbacks))
