"""Late-interaction page retrieval: a ColPali / ColQwen2 encoder + a :class:`~mmrank.index.maxsim.MultiVectorIndex`.

:class:`MaxSimRetriever` is an ordinary first stage (``index(corpus)`` then ``retrieve(queries, k) -> Run``), so any
reranker follows it. :func:`index_folder` / :class:`MaxSimCollection` are the on-disk form used by ``mmrank index``
/ ``mmrank search`` and :func:`mmrank.collection.open_index` (marker ``mmrank_maxsim.json``).

Items whose image fails to load or render are skipped at indexing and recorded: every ranking of the retriever
carries the fallback ``"maxsim: N items not indexed (image failed to load)"``, a folder index keeps the warnings in
its manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrank.encoders.multivector import MultiVectorEncoder, get_multivector_encoder, load_images
from mmrank.errors import DataFormatError, IndexCorruptError, OptionError
from mmrank.index import store
from mmrank.index.maxsim import MultiVectorIndex
from mmrank.retrieve.base import Retriever
from mmrank.types import Corpus, Hit, Item, PageRef, Query, Ranking, Run

MARKER = "mmrank_maxsim.json"
DEFAULT_MODELS = {"colqwen2": "vidore/colqwen2-v1.0-hf", "colpali": "vidore/colpali-v1.3-hf"}


def _encoder(encoder: MultiVectorEncoder | str, model: str | None, kw: dict[str, Any]) -> MultiVectorEncoder:
    if isinstance(encoder, MultiVectorEncoder):
        return encoder
    name = encoder.lower()
    if model is None:
        if name not in DEFAULT_MODELS:
            raise OptionError(f"encoder {encoder!r} needs model= (hub id or local folder)")
        model = DEFAULT_MODELS[name]
    return get_multivector_encoder(name, model, **kw)


@dataclass
class SearchOptions:
    """Exact MaxSim by default; ``approximate=True`` generates candidates with faiss (see the index module)."""

    approximate: bool = False
    token_k: int = 32
    nprobe: int = 8
    max_candidates: int | None = None
    ann_factory: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "approximate": self.approximate,
            "token_k": self.token_k,
            "nprobe": self.nprobe,
            "max_candidates": self.max_candidates,
            "ann_factory": self.ann_factory,
        }


class MaxSimRetriever(Retriever):
    """``MaxSimRetriever("colqwen2", model="vidore/colqwen2-v1.0-hf").index(corpus).retrieve(queries, k)``.

    ``within_doc=True`` is MMDocIR's page-retrieval protocol: a query whose ``meta["doc_id"]`` is set is scored
    against the pages of that document only (``item.page.doc_id``); other queries search the whole corpus.
    """

    name = "maxsim"

    def __init__(
        self,
        encoder: MultiVectorEncoder | str = "colqwen2",
        *,
        model: str | None = None,
        pool_factor: int | None = None,
        approximate: bool = False,
        token_k: int = 32,
        nprobe: int = 8,
        max_candidates: int | None = None,
        ann_factory: str | None = None,
        batch_size: int | None = None,
        within_doc: bool = False,
        **encoder_kwargs: Any,
    ) -> None:
        super().__init__()
        self.within_doc = within_doc
        self.encoder = _encoder(encoder, model, encoder_kwargs)
        self.name = self.encoder.family
        self.pool_factor = pool_factor
        self.options = SearchOptions(approximate, token_k, nprobe, max_candidates, ann_factory)
        self.batch_size = batch_size
        self.index_obj = MultiVectorIndex(model_id=self.encoder.model_id, pool_factor=pool_factor)
        self.skipped: list[tuple[str, str]] = []

    def index(self, corpus: Corpus) -> MaxSimRetriever:
        self.corpus = corpus
        self.index_obj = MultiVectorIndex(model_id=self.encoder.model_id, pool_factor=self.pool_factor)
        items = list(corpus.values())
        images, self.skipped = load_images(items)
        bad = {i for i, _ in self.skipped}
        good = [it for it in items if it.id not in bad]
        if not good:
            raise DataFormatError(f"{self.name}: no item of the corpus has an image that loads ({len(bad)} skipped)")
        mats = self.encoder.encode_images(images, batch_size=self.batch_size)
        self.index_obj.add(mats, [it.id for it in good], model_id=self.encoder.model_id)
        return self

    def retrieve(self, queries: Sequence[Query], k: int = 100) -> Run:
        corpus = self._require_index()
        qm = self.encoder.encode_queries(queries)
        if self.within_doc and any(q.meta.get("doc_id") is not None for q in queries):
            scores, ids = self._search_within_doc(queries, qm, k)
        else:
            scores, ids = self.index_obj.search(qm, k, **self.options.kwargs())
        fb = [f"{self.name}: {len(self.skipped)} items not indexed (image failed to load)"] if self.skipped else []
        out = []
        for q, s, i in zip(queries, scores, ids, strict=True):
            hits = [Hit(d, float(v), corpus[d]) for d, v in zip(i, s, strict=True)]
            out.append(Ranking(q.id, hits, stage=f"{self.name}:{self.encoder.model_id}", fallbacks=list(fb), query=q))
        return Run(out, name=self.name)

    def _search_within_doc(self, queries: Sequence[Query], qm: list[Any], k: int) -> tuple[list[Any], list[list[str]]]:
        import numpy as np

        from mmrank.index.maxsim import _topk

        corpus = self._require_index()
        pos = {i: n for n, i in enumerate(self.index_obj.ids)}
        by_doc: dict[str, list[int]] = {}
        for i in self.index_obj.ids:
            page = corpus[i].page
            if page is not None:
                by_doc.setdefault(page.doc_id, []).append(pos[i])
        scores: list[Any] = []
        ids: list[list[str]] = []
        for q, m in zip(queries, qm, strict=True):
            doc = q.meta.get("doc_id")
            if doc is None:
                found_s, found_i = self.index_obj.search([m], k, **self.options.kwargs())
                scores.append(found_s[0])
                ids.append(found_i[0])
                continue
            sub = np.array(by_doc.get(str(doc), []), dtype=np.int64)
            if sub.size == 0:
                scores.append(np.zeros(0, dtype=np.float32))
                ids.append([])
                continue
            row = self.index_obj.scores([m], sub)[0]
            top = _topk(row, k)
            scores.append(row[top])
            ids.append([self.index_obj.ids[j] for j in sub[top]])
        return scores, ids


def colqwen2_retriever(**kw: Any) -> MaxSimRetriever:
    """ColQwen2 first stage (default weights ``vidore/colqwen2-v1.0-hf``)."""
    return MaxSimRetriever("colqwen2", **kw)


def colpali_retriever(**kw: Any) -> MaxSimRetriever:
    """ColPali first stage (default weights ``vidore/colpali-v1.3-hf``)."""
    return MaxSimRetriever("colpali", **kw)


# --- on-disk folder index ------------------------------------------------------------------------------
@dataclass
class FolderReport:
    out_dir: Path
    n_indexed: int
    warnings: list[str] = field(default_factory=list)
    bytes_per_page: float = 0.0

    def summary(self) -> str:
        return (
            f"indexed {self.n_indexed} pages into {self.out_dir} ({self.bytes_per_page / 1024:.1f} KiB of tokens "
            f"per page), skipped {len(self.warnings)}"
        )


def index_folder(
    folder: str | Path,
    out_dir: str | Path,
    *,
    encoder: MultiVectorEncoder | str = "colqwen2",
    model: str | None = None,
    pool_factor: int | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    device: str | None = None,
) -> FolderReport:
    """Encode every page image under ``folder`` into a multi-vector index at ``out_dir``.

    ``folder`` is a folder of images (page screenshots), or a PDF / a folder of PDFs whose pages are rendered
    lazily by :mod:`mmrank.docs` (ids ``"<doc>#<page>"``; unreadable files and pages are skipped and listed in the
    warnings). One atomic save: the marker ``mmrank_maxsim.json`` is the manifest and the commit point.
    """
    root = Path(folder).resolve()
    items, warnings, sources = _folder_items(root)
    kw = {"device": device} if device else {}
    enc = _encoder(encoder, model, kw)
    images, bad = load_images(items)
    warnings += [f"{i}: {why}" for i, why in bad]
    skip = {i for i, _ in bad}
    good = [it for it in items if it.id not in skip]
    if not good:
        raise DataFormatError(f"no image under {root} could be indexed ({len(warnings)} skipped)")
    idx = MultiVectorIndex(model_id=enc.model_id, pool_factor=pool_factor)
    idx.add(enc.encode_images(images, batch_size=batch_size), [it.id for it in good], model_id=enc.model_id)
    out = Path(out_dir)
    with store.writer(out, manifest=MARKER, overwrite=overwrite) as w:
        fields = idx.save_into(w)
        fields["encoder"] = {"family": enc.family, "model": enc.model_id}
        fields["root"] = str(root)
        fields["warnings"] = warnings
        if sources:
            kept = {it.id for it in good}
            blob = {i: v for i, v in sources.items() if i in kept}
            fields["files"]["sources"] = w.blob("sources", ".json", json.dumps(blob).encode())
        w.commit(fields)
    return FolderReport(out, len(good), warnings, idx.nbytes_per_item())


def _folder_items(root: Path) -> tuple[list[Item], list[str], dict[str, list[Any]]]:
    """Image items of a folder, or lazy page items of a PDF / folder of PDFs (+ ``{id: [pdf path, page]}``)."""
    if root.suffix.lower() == ".pdf" or (root.is_dir() and next(root.rglob("*.pdf"), None) is not None):
        from mmrank.docs.pages import load_pdf_folder, pdf_pages

        pages = (
            pdf_pages(root, ocr="never")
            if root.is_file()
            else load_pdf_folder(root, ocr="never", progress=False)  # images only: no OCR needed
        )
        warnings = [f"{f}: {why}" for f, why in pages.failed.items()]
        sources = {it.id: [str(getattr(it.image, "path", "")), it.page.page if it.page else 1] for it in pages.items}
        return list(pages.items), warnings, sources
    from mmrank.encoders.images import list_image_files

    files, warnings = list_image_files(root)
    return [Item(p.relative_to(root).as_posix(), image=p, page=_page_ref(p.name)) for p in files], warnings, {}


class MaxSimCollection:
    """An opened folder index (``mmrank.collection.open_index``): text queries, exact or approximate MaxSim.

    ``model`` overrides where the encoder's weights are read from (e.g. a local copy of the hub id); the index was
    built with one model id, and a different ``model_id`` in an explicitly passed ``encoder`` is refused.
    """

    kind = "maxsim"

    def __init__(
        self,
        index_dir: str | Path,
        *,
        encoder: MultiVectorEncoder | None = None,
        model: str | None = None,
        device: str | None = None,
        verify: bool = True,
        **search: Any,
    ) -> None:
        d = Path(index_dir)
        self.manifest = store.read_manifest(d, verify=verify, name=MARKER, required=("tokens", "offsets", "ids"))
        self.index = MultiVectorIndex.from_manifest(d, self.manifest)
        spec = self.manifest.get("encoder")
        if not isinstance(spec, dict) or spec.get("family") not in ("colpali", "colqwen2"):
            raise IndexCorruptError(f"{d}: {MARKER} names no ColPali / ColQwen2 encoder")
        self.root = Path(str(self.manifest.get("root", d)))
        files = store.manifest_files(d, self.manifest)
        self.sources: dict[str, Any] = {}
        if "sources" in files:
            try:
                self.sources = json.loads(files["sources"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise IndexCorruptError(f"{d}: unreadable page sources ({e})") from e
        if encoder is not None and encoder.model_id != self.index.model_id:
            raise DataFormatError(f"encoder {encoder.model_id!r} does not match the index's {self.index.model_id!r}")
        kw = {"device": device} if device else {}
        self._encoder = encoder
        self._encoder_args = (str(spec["family"]), model or str(spec["model"]), kw)
        try:
            self.options = SearchOptions(**search)
        except TypeError as e:
            known = "approximate, token_k, nprobe, max_candidates, ann_factory"
            raise OptionError(f"a MaxSim index takes {known} ({e})") from e

    @property
    def encoder(self) -> MultiVectorEncoder:
        if self._encoder is None:  # loaded on first search: opening an index stays cheap
            fam, model, kw = self._encoder_args
            self._encoder = get_multivector_encoder(fam, model, **kw)
        return self._encoder

    def item(self, item_id: str) -> Item:
        src = self.sources.get(item_id)
        if src is not None:  # a PDF page, rendered when first read
            from mmrank.docs.pages import PageImage

            doc = item_id.rsplit("#", 1)[0]
            return Item(item_id, image=PageImage(str(src[0]), int(src[1])), page=PageRef(doc, int(src[1])))
        return Item(item_id, image=self.root / item_id, page=_page_ref(item_id))

    def query_error(self, query: Query) -> str | None:
        """Why this index cannot answer ``query`` (``None`` when it can): its encoder scores text queries only."""
        if query.image is not None:
            return (
                "a multi-vector page index scores text queries against page images and cannot take a query image; "
                "image and composed (image + text) queries need an image index built with a CLIP-style encoder"
            )
        return None

    def search(self, query: Query | str, k: int = 10) -> Ranking:
        q = Query("query", text=query) if isinstance(query, str) else query
        qm = self.encoder.encode_queries([q])
        scores, ids = self.index.search(qm, k, **self.options.kwargs())
        hits = [Hit(i, float(s), self.item(i)) for i, s in zip(ids[0], scores[0], strict=True)]
        return Ranking(q.id, hits, stage=f"{self.encoder.family}:{self.index.model_id}", query=q)


def _page_ref(item_id: str) -> PageRef | None:
    """``doc/page-3.png`` style names -> ``PageRef("doc", 3)``; other names carry no page reference."""
    import re

    m = re.match(r"^(.*?)[/_-]p(?:age)?[-_]?(\d+)\.[A-Za-z]+$", item_id)
    if not m or int(m.group(2)) < 1:
        return None
    return PageRef(m.group(1), int(m.group(2)))
