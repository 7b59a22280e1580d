"""Reading PDFs: validation, page count, text layer and rendering, with PDFium (``pypdfium2``, the default: pip-only
and fast) or Poppler (``pdf2image`` over ``pdftoppm``). Every failure is a :class:`DocumentError` naming the file
and, where it applies, the page (1-based)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mmrank.errors import DocumentError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

Backend = Literal["pdfium", "poppler"]
BACKENDS: tuple[str, ...] = ("pdfium", "poppler")
DEFAULT_DPI = 150
# Default pixel budget of one rendered page: an A4/Letter page at 150 dpi is about 2.1 Mpx; a poster-sized page is
# rendered at a lower dpi so that it stays under this (recorded by the caller), never above the bomb guard.
DEFAULT_MAX_PIXELS = 12_000_000
MIN_PAGES_PER_WORKER = 32  # below twice this, render_pages stays in one process (see benchmarks/pdf_render.py)
CHUNK_PAGES = 4  # pages per worker task: small, so pixels stream back in page order with bounded memory


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DocumentError("no such PDF file", path)
    if path.stat().st_size == 0:
        raise DocumentError("zero-byte file, not a PDF", path)
    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF-" not in head:
        kind = "an HTML page" if b"<html" in head.lower() or b"<!doctype" in head.lower() else "not a PDF"
        if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
            kind = "an image"
        raise DocumentError(f"{kind} (no %PDF- header)", path)


@contextmanager
def open_pdf(path: str | Path, *, password: str | None = None) -> Iterator[Any]:
    """A ``pypdfium2.PdfDocument``, closed on exit; typed errors for missing, non-PDF, encrypted, corrupt files."""
    import pypdfium2 as pdfium

    p = Path(path)
    _check_file(p)
    try:
        doc = pdfium.PdfDocument(str(p), password=password)
    except pdfium.PdfiumError as e:
        msg = str(e)
        if "password" in msg.lower():
            hint = "a wrong password was given" if password else "it is encrypted; pass password="
            raise DocumentError(f"cannot open, {hint} ({msg})", p) from e
        raise DocumentError(f"corrupt or unsupported PDF ({msg})", p) from e
    try:
        if len(doc) == 0:
            raise DocumentError("the PDF has no pages", p)
        yield doc
    finally:
        doc.close()


def page_count(path: str | Path, *, password: str | None = None) -> int:
    with open_pdf(path, password=password) as doc:
        return len(doc)


def _check_page(path: Path, page: int, n: int) -> None:
    if not 1 <= page <= n:
        raise DocumentError(f"page {page} does not exist (pages are 1..{n})", path)


def page_text(path: str | Path, page: int, *, password: str | None = None) -> str:
    """The text layer of one page (1-based), as PDFium extracts it ("" when the page has none)."""
    with open_pdf(path, password=password) as doc:
        _check_page(Path(path), page, len(doc))
        pg = doc[page - 1]
        try:
            return _layer(pg)
        finally:
            pg.close()


def _layer(pg: Any) -> str:
    tp = pg.get_textpage()
    try:
        return str(tp.get_text_range()).replace("\r\n", "\n").replace("\x00", "")
    finally:
        tp.close()


def page_layers(
    path: str | Path, *, password: str | None = None, texts: bool = True
) -> tuple[list[str], list[tuple[float, float]]]:
    """Every page's text layer (all "" with ``texts=False``) and ``(width, height)`` in points, opening the file
    and each page once."""
    layers: list[str] = []
    sizes: list[tuple[float, float]] = []
    with open_pdf(path, password=password) as doc:
        for i in range(len(doc)):
            pg = doc[i]
            try:
                w, h = pg.get_size()
                sizes.append((float(w), float(h)))
                layers.append(_layer(pg) if texts else "")
            finally:
                pg.close()
    return layers, sizes


def fit_dpi(width_pt: float, height_pt: float, dpi: float, max_pixels: int | None) -> float:
    """``dpi`` lowered just enough that a page of that size (in points) renders within ``max_pixels``."""
    if max_pixels is None:
        return dpi
    px = (width_pt * dpi / 72.0) * (height_pt * dpi / 72.0)
    if px <= max_pixels:
        return dpi
    return dpi * math.sqrt(max_pixels / px) * 0.999


def render_page(
    path: str | Path,
    page: int,
    *,
    dpi: float = DEFAULT_DPI,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    backend: Backend = "pdfium",
    password: str | None = None,
) -> Image.Image:
    """Render one page (1-based) to an RGB PIL image at ``dpi``, lowered for pages whose render would exceed
    ``max_pixels`` (the image's ``info["dpi_used"]`` says which dpi was used)."""
    if backend not in BACKENDS:
        raise DocumentError(f"unknown PDF backend {backend!r}; use one of {', '.join(BACKENDS)}")
    p = Path(path)
    with open_pdf(p, password=password) as doc:
        _check_page(p, page, len(doc))
        pg = doc[page - 1]
        try:
            w, h = pg.get_size()
            use = fit_dpi(w, h, dpi, max_pixels)
            if backend == "pdfium":
                try:
                    img = pg.render(scale=use / 72.0).to_pil().convert("RGB")
                except Exception as e:  # PDFium reports render failures with several types
                    raise DocumentError(f"page {page} cannot be rendered ({e})", p) from e
        finally:
            pg.close()
    if backend == "poppler":
        img = _render_poppler(p, page, use, password)
    img.info["dpi_used"] = use
    return img


def _render_poppler(path: Path, page: int, dpi: float, password: str | None) -> Image.Image:
    try:
        from pdf2image import convert_from_path
        from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError
    except ModuleNotFoundError as e:
        raise MissingDependencyError("the poppler backend needs pdf2image: pip install pdf2image") from e
    try:
        imgs = convert_from_path(
            str(path),
            dpi=max(1, math.floor(dpi)),
            first_page=page,
            last_page=page,
            userpw=password,  # type: ignore[arg-type]
        )
    except PDFInfoNotInstalledError as e:
        raise MissingDependencyError("the poppler backend needs poppler-utils (apt install poppler-utils)") from e
    except (PDFPageCountError, PDFSyntaxError) as e:
        raise DocumentError(f"page {page} cannot be rendered by poppler ({e})", path) from e
    if not imgs:
        raise DocumentError(f"poppler rendered nothing for page {page}", path)
    return imgs[0].convert("RGB")


def _render_iter(
    path: str, pages: list[int], dpi: float, max_pixels: int | None, password: str | None
) -> Iterator[tuple[int, Image.Image]]:
    with open_pdf(path, password=password) as doc:
        for n in pages:
            pg = doc[n - 1]
            try:
                w, h = pg.get_size()
                img = pg.render(scale=fit_dpi(w, h, dpi, max_pixels) / 72.0).to_pil().convert("RGB")
            finally:
                pg.close()
            yield n, img


def _render_chunk(
    args: tuple[str, list[int], float, int | None, str | None],
) -> list[tuple[int, bytes, tuple[int, int]]]:
    return [(n, img.tobytes(), img.size) for n, img in _render_iter(*args)]


def render_pages(
    path: str | Path,
    pages: list[int] | None = None,
    *,
    dpi: float = DEFAULT_DPI,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    password: str | None = None,
) -> Iterator[tuple[int, Image.Image]]:
    """Render many pages of one PDF with PDFium, yielding ``(page, image)`` in the order of ``pages``.

    ``workers=None`` renders in this process for short runs (fewer than ``2 * MIN_PAGES_PER_WORKER`` pages: PDFium
    is fast and a pool costs more than it saves) and on machines with fewer than 4 CPUs (on 2 cores, two processes
    rendered 0.76x the pages/s of one, since shipping the pixels back costs about what the second core saves:
    ``benchmarks/results/pdf_render_long.md``); else in one process per CPU [gain with 4+ CPUs not measured here].
    Workers render tasks of ``CHUNK_PAGES`` pages, each opening the file once; at most two tasks per worker are in
    flight, so memory stays bounded however long the PDF. Use it to render a whole document fast; use
    :class:`~mmrank.docs.pages.PageImage` for lazy one-page access."""
    import os
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    from PIL import Image

    n = page_count(path, password=password)
    todo = list(range(1, n + 1)) if pages is None else list(pages)
    for pn in todo:
        _check_page(Path(path), pn, n)
    if workers is None:  # processes pay for their start and for shipping pixels back only on long runs
        cpus = os.cpu_count() or 1
        workers = cpus if cpus >= 4 and len(todo) >= MIN_PAGES_PER_WORKER * 2 else 1
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        yield from _render_iter(str(path), todo, dpi, max_pixels, password)
        return
    chunks = [
        (str(path), todo[i : i + CHUNK_PAGES], dpi, max_pixels, password) for i in range(0, len(todo), CHUNK_PAGES)
    ]
    with ProcessPoolExecutor(workers) as ex:
        pending: deque[Future[list[tuple[int, bytes, tuple[int, int]]]]] = deque()
        nxt = 0
        while nxt < len(chunks) or pending:
            while nxt < len(chunks) and len(pending) < 2 * workers:
                pending.append(ex.submit(_render_chunk, chunks[nxt]))
                nxt += 1
            for pn, data, wh in pending.popleft().result():
                yield pn, Image.frombytes("RGB", wh, data)
