"""PDF pages as :class:`~mmrank.types.Item` s: ``Item(id="<doc>#<n>", image=PageImage(...), text=<layer or OCR>,
page=PageRef(doc, n))`` with 1-based ``n``.

Pages are lazy: a :class:`PageImage` renders its page when first read, so a 500-page PDF is never in memory at once.
The text of each page comes from the PDF's text layer, or from OCR (RapidOCR on a render) when the layer is empty or
unusable; ``item.meta["text_source"]`` records which (``"layer"``, ``"ocr"`` or ``"none"``). With ``cache_dir``,
texts and renders are cached on disk keyed by the file's content hash, page and dpi (atomic writes), so a re-index
reads no page twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mmrank.docs.pdf import (
    DEFAULT_DPI,
    DEFAULT_MAX_PIXELS,
    Backend,
    fit_dpi,
    page_layers,
    render_page,
    render_pages,
)
from mmrank.errors import DataFormatError, DocumentError, MmrankError
from mmrank.index import store
from mmrank.types import Item, PageRef

if TYPE_CHECKING:
    from PIL import Image

OcrMode = Literal["auto", "always", "never"]
MIN_CHARS = 20  # a text layer with fewer letters or digits than this is treated as missing (scans, figure pages)


@dataclass(frozen=True)
class PageImage:
    """One PDF page, rendered on demand (a :class:`~mmrank.types.LazyImage`). ``content`` (sha256 of the file) keys
    the on-disk render cache in ``cache_dir`` when both are set."""

    path: str
    page: int
    dpi: float = DEFAULT_DPI
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    backend: Backend = "pdfium"
    password: str | None = field(default=None, repr=False)
    content: str | None = None
    cache_dir: str | None = None

    def __str__(self) -> str:
        return f"{self.path} page {self.page}"

    def _cached(self) -> Path | None:
        if self.cache_dir is None or self.content is None:
            return None
        return Path(self.cache_dir) / "renders" / self.content / f"{self.page}-{self.dpi:g}-{self.max_pixels}.png"

    def load_pil(self) -> Image.Image:
        from PIL import Image

        cached = self._cached()
        if cached is not None and cached.is_file():
            with Image.open(cached) as im:
                return im.convert("RGB")
        img = render_page(
            self.path, self.page, dpi=self.dpi, max_pixels=self.max_pixels, backend=self.backend, password=self.password
        )
        if cached is not None:
            import io

            buf = io.BytesIO()
            img.save(buf, format="PNG")
            store.atomic_write_bytes(cached, buf.getvalue())
        return img


@dataclass
class DocumentPages:
    """The pages of one or more PDFs and what happened while reading them (skipped files, OCR fallbacks)."""

    items: list[Item]
    warnings: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file -> reason


def usable(text: str, min_chars: int = MIN_CHARS) -> bool:
    """A text layer is usable when it holds at least ``min_chars`` letters or digits."""
    return sum(ch.isalnum() for ch in text) >= min_chars


def _page_texts(
    path: Path, *, ocr: OcrMode, dpi: float, max_pixels: int | None, password: str | None, min_chars: int
) -> tuple[list[tuple[str, str]], list[tuple[float, float]]]:
    """``[(text, source)]`` per page (the layer, or OCR where the layer is unusable, ``ocr="auto"``) and the page
    sizes in points."""
    layers, sizes = page_layers(path, password=password)
    out = [(layer, "layer" if layer.strip() else "none") for layer in layers]
    need = [
        n
        for n, layer in enumerate(layers, start=1)
        if ocr == "always" or (ocr == "auto" and not usable(layer, min_chars))
    ]
    if need:  # the pages to OCR are rendered with the file opened once
        from mmrank.docs.ocr import ocr_text

        for n, img in render_pages(path, need, dpi=dpi, max_pixels=max_pixels, workers=1, password=password):
            text = ocr_text(img)
            if text.strip():
                out[n - 1] = (text, "ocr")
    return out, sizes


def pdf_pages(
    path: str | Path,
    *,
    doc_id: str | None = None,
    ocr: OcrMode = "auto",
    dpi: float = DEFAULT_DPI,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    backend: Backend = "pdfium",
    password: str | None = None,
    min_chars: int = MIN_CHARS,
    cache_dir: str | Path | None = None,
) -> DocumentPages:
    """The pages of one PDF as lazy items. ``doc_id`` defaults to the file name. Raises :class:`DocumentError`
    for a file that cannot be read (use :func:`load_pdf_folder` to go on past bad files)."""
    if ocr not in ("auto", "always", "never"):
        raise DataFormatError(f"ocr must be 'auto', 'always' or 'never', got {ocr!r}")
    p = Path(path)
    did = doc_id or p.name
    digest = store.sha256_file(p) if cache_dir is not None and p.is_file() else None  # keys the caches only
    cached = None
    if cache_dir is not None and digest is not None:
        cached = Path(cache_dir) / "text" / f"{digest}-{ocr}-{dpi:g}-{min_chars}.json"
    texts: list[tuple[str, str]] | None = None
    sizes: list[tuple[float, float]] | None = None
    if cached is not None and cached.is_file():
        try:
            entry = json.loads(cached.read_text())
            texts = [(str(t), str(s)) for t, s in entry["pages"]]
            if "sizes" in entry:  # entries written before sizes were kept get them added below
                sizes = [(float(w), float(h)) for w, h in entry["sizes"]]
                if len(sizes) != len(texts):
                    raise ValueError("sizes do not match pages")
        except (ValueError, KeyError, TypeError):
            texts, sizes = None, None  # a damaged cache entry is recomputed
    fresh = texts is None or sizes is None
    if texts is None:
        texts, sizes = _page_texts(p, ocr=ocr, dpi=dpi, max_pixels=max_pixels, password=password, min_chars=min_chars)
    if sizes is None:  # a cache entry from before sizes were kept
        sizes = page_layers(p, password=password, texts=False)[1]
    if fresh and cached is not None:
        store.atomic_write_bytes(cached, json.dumps({"pages": texts, "sizes": sizes}).encode())
    items = []
    warnings = []
    for n, ((text, source), (w, h)) in enumerate(zip(texts, sizes, strict=True), start=1):
        img = PageImage(
            str(p), n, dpi, max_pixels, backend, password, digest, None if cache_dir is None else str(cache_dir)
        )
        meta: dict[str, Any] = {"text_source": source}
        used = fit_dpi(w, h, dpi, max_pixels)
        if used < dpi:  # recorded fallback: the page renders at a lower dpi to stay within max_pixels
            meta["render_dpi"] = round(used, 2)
            note = f"page {n} ({w:.0f}x{h:.0f} pt) is over max_pixels {max_pixels} at {dpi:g} dpi"
            note += f"; renders at {used:.1f}"
            meta["fallbacks"] = [f"downscaled: {note}"]
            warnings.append(f"{p}: {note}")
        items.append(Item(f"{did}#{n}", text=text, image=img, page=PageRef(did, n), meta=meta))
        if source == "ocr":
            warnings.append(f"{p}: page {n} has no usable text layer; text from OCR")
        elif source == "none":
            warnings.append(f"{p}: page {n} has no text (layer empty{'' if ocr == 'never' else ', OCR read nothing'})")
    return DocumentPages(items, warnings)


def _one(args: tuple[str, str, dict[str, Any]]) -> tuple[str, DocumentPages | None, str | None]:
    path, did, kw = args
    try:
        return path, pdf_pages(path, doc_id=did, **kw), None
    except MmrankError as e:
        return path, None, str(e)


def load_pdf_folder(
    folder: str | Path,
    *,
    recursive: bool = True,
    workers: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> DocumentPages:
    """Every PDF under ``folder`` as page items (``doc_id`` = path relative to the folder), read in parallel
    processes, with a progress bar. Files that cannot be read are skipped and listed in ``failed`` with the reason;
    the others are kept. ``kwargs`` go to :func:`pdf_pages`."""
    root = Path(folder)
    if not root.is_dir():
        raise DocumentError("not a folder", root)
    files = sorted(p for p in (root.rglob("*") if recursive else root.glob("*")) if p.suffix.lower() == ".pdf")
    if not files:
        raise DocumentError("no .pdf files", root)
    jobs = [(str(p), p.relative_to(root).as_posix(), kwargs) for p in files]
    workers = workers if workers is not None else min(len(files), os.cpu_count() or 1)
    out = DocumentPages([])
    results: Sequence[tuple[str, DocumentPages | None, str | None]]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="PDFs", unit="file", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            results = []
            for r in ex.map(_one, jobs):
                results.append(r)
                bar.update()
    else:
        results = []
        for j in jobs:
            results.append(_one(j))
            bar.update()
    bar.close()
    for path, pages, err in results:
        if pages is None:
            out.failed[path] = str(err)
            out.warnings.append(f"skipped {err}")
        else:
            out.items += pages.items
            out.warnings += pages.warnings
    return out
