"""PDF ingestion: renderers, text layer, OCR fallback, lazy page items, caches and bad files."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from mmrank.docs import PageImage, load_pdf_folder, page_count, page_text, pdf_pages, render_page
from mmrank.docs.pdf import fit_dpi
from mmrank.errors import DocumentError
from mmrank.types import PageRef
from tests.docs.pdfs import SCANNED_TEXT, TEXTS, bad_files, scanned_pdf, text_pdf


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pdfs")
    out = bad_files(d / "bad")
    out["text"] = text_pdf(d / "text.pdf")
    out["scanned"] = scanned_pdf(d / "scanned.pdf")
    return out


def test_text_layer_equals_generated_text(files):
    assert page_count(files["text"]) == 3
    for n, t in enumerate(TEXTS, start=1):
        assert page_text(files["text"], n).strip() == t


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pdfium_and_poppler_render_the_same_page(files):
    a = render_page(files["text"], 2, dpi=72)
    b = render_page(files["text"], 2, dpi=72, backend="poppler")
    assert abs(a.size[0] - b.size[0]) <= 1 and abs(a.size[1] - b.size[1]) <= 1
    assert a.size == (596, 842)  # A4 (595.3 x 841.9 pt) at 72 dpi
    ga = np.asarray(a.convert("L").resize((119, 168)), dtype=float)
    gb = np.asarray(b.convert("L").resize((119, 168)), dtype=float)
    assert np.abs(ga - gb).mean() < 3.0  # same ink in the same place
    assert np.asarray(a.convert("L")).min() < 128 and np.asarray(b.convert("L")).min() < 128  # the text is drawn


def test_pixel_budget_lowers_dpi():
    assert fit_dpi(612, 792, 150, None) == 150
    dpi = fit_dpi(612, 792, 150, 1_000_000)
    assert (612 * dpi / 72) * (792 * dpi / 72) <= 1_000_000 < (612 * 150 / 72) * (792 * 150 / 72)


def test_page_items_are_lazy_and_picklable(files):
    pages = pdf_pages(files["text"], doc_id="report")
    assert [it.id for it in pages.items] == ["report#1", "report#2", "report#3"]
    it = pages.items[1]
    assert it.page == PageRef("report", 2) and it.modality == "page" and it.text.strip() == TEXTS[1]
    assert it.meta["text_source"] == "layer" and not pages.warnings
    assert isinstance(it.image, PageImage)
    img = pickle.loads(pickle.dumps(it.image)).load_pil()  # a worker process can render it
    assert img.size == (1241, 1754)  # A4 at 150 dpi
    assert it.load_image().size == img.size


def test_ocr_fallback_reads_a_scanned_page(files, tmp_path):
    pages = pdf_pages(files["scanned"], cache_dir=tmp_path)
    first, scan = pages.items
    assert first.meta["text_source"] == "layer"
    assert scan.meta["text_source"] == "ocr"
    assert SCANNED_TEXT.replace(" ", "") in scan.text.replace(" ", "").upper()
    assert any("page 2" in w and "OCR" in w for w in pages.warnings)
    never = pdf_pages(files["scanned"], ocr="never")
    assert never.items[1].meta["text_source"] == "none" and never.items[1].text == ""
    # the second read comes from the cache (keyed by content): prove it by editing the cached entry
    (entry,) = (tmp_path / "text").glob("*.json")
    cached = json.loads(entry.read_text())
    cached["pages"][1][0] = "FROM THE CACHE"
    sizes = cached.pop("sizes")  # as an entry written before page sizes were kept
    entry.write_text(json.dumps(cached))
    again = pdf_pages(files["scanned"], cache_dir=tmp_path)
    assert again.items[1].text == "FROM THE CACHE"  # its texts are reused (no second OCR), its sizes added
    assert json.loads(entry.read_text())["sizes"] == sizes
    # renders are cached too
    again.items[0].load_image()
    assert list((tmp_path / "renders").rglob("*.png"))


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("encrypted", "encrypted; pass password"),
        ("truncated", "corrupt"),
        ("html", "an HTML page"),
        ("image", "an image"),
        ("empty", "zero-byte"),
        ("zero_pages", "corrupt|no pages"),  # PDFium refuses an empty page tree as malformed
    ],
)
def test_bad_files_are_typed_errors_naming_the_file(files, name, match):
    with pytest.raises(DocumentError, match=match) as e:
        pdf_pages(files[name])
    assert files[name].name in str(e.value)


def test_encrypted_pdf_opens_with_its_password(files):
    with pytest.raises(DocumentError, match="wrong password"):
        page_count(files["encrypted"], password="nope")
    pages = pdf_pages(files["encrypted"], password="secret")
    assert pages.items[0].text.strip() == TEXTS[0]
    assert pages.items[0].load_image().size == (1241, 1754)


def test_missing_page_is_named(files):
    with pytest.raises(DocumentError, match=r"page 9 does not exist \(pages are 1\.\.3\)"):
        render_page(files["text"], 9)


def test_folder_goes_on_past_bad_files(files):
    folder = files["good"].parent
    pages = load_pdf_folder(folder, workers=1, progress=False)
    assert {it.page.doc_id for it in pages.items} == {"good.pdf"}
    assert set(map(lambda p: p.split("/")[-1], pages.failed)) == {
        "encrypted.pdf",
        "truncated.pdf",
        "html.pdf",
        "image.pdf",
        "empty.pdf",
        "zero_pages.pdf",
    }
    assert len(pages.warnings) == 6


def test_render_pages_in_processes_equals_one_page_at_a_time(files):
    from mmrank.docs.pdf import render_pages

    got = list(render_pages(files["text"], dpi=40, workers=2))
    assert [n for n, _ in got] == [1, 2, 3]
    for n, img in got:
        assert img.tobytes() == render_page(files["text"], n, dpi=40).tobytes()
    with pytest.raises(DocumentError, match="page 4 does not exist"):
        list(render_pages(files["text"], [4]))


def test_render_pages_streams_many_small_tasks_in_page_order(tmp_path):
    from reportlab.pdfgen import canvas

    from mmrank.docs.pdf import CHUNK_PAGES, render_pages

    path = tmp_path / "eleven.pdf"
    c = canvas.Canvas(str(path), pagesize=(200, 200))
    for n in range(1, 12):
        c.drawString(20, 100, f"page {n}")
        c.showPage()
    c.save()
    wanted = [11, 2, 3, 5, 7, 1, 4, 6, 8, 9, 10]  # any order, more tasks than workers
    got = list(render_pages(path, wanted, dpi=30, workers=2))
    assert len(wanted) > 2 * 2 * CHUNK_PAGES // 2 and [n for n, _ in got] == wanted
    for n, img in got:
        assert img.tobytes() == render_page(path, n, dpi=30).tobytes()


def test_a_poster_sized_page_is_rendered_within_the_pixel_budget(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "poster.pdf"
    c = canvas.Canvas(str(path), pagesize=(5000, 5000))  # 69 x 69 inches: 108 Mpx at 150 dpi
    c.drawString(100, 100, "poster")
    c.showPage()
    c.save()
    img = render_page(path, 1, dpi=150, max_pixels=4_000_000)
    assert img.width * img.height <= 4_000_000 and img.info["dpi_used"] < 150
    pages = pdf_pages(path, max_pixels=4_000_000, ocr="never")
    lazy = pages.items[0].load_image()
    assert lazy.size == img.size
    # the downscale is a recorded fallback: on the item, and among the document's warnings
    meta = pages.items[0].meta
    assert meta["render_dpi"] == pytest.approx(img.info["dpi_used"], abs=0.01)
    assert meta["fallbacks"][0].startswith("downscaled: page 1 (5000x5000 pt)")
    assert any("over max_pixels" in w for w in pages.warnings)
    assert "render_dpi" not in pdf_pages(path, max_pixels=None, ocr="never").items[0].meta


def test_a_pdf_with_thousands_of_pages_is_read_lazily(tmp_path):
    import tracemalloc

    from reportlab.pdfgen import canvas

    path = tmp_path / "long.pdf"
    c = canvas.Canvas(str(path))
    for n in range(1, 2001):
        c.drawString(72, 720, f"page number {n} of the long report")
        c.showPage()
    c.save()
    tracemalloc.start()
    pages = pdf_pages(path, ocr="never", cache_dir=tmp_path / "cache")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(pages.items) == 2000 and peak < 64 * 2**20  # text and lazy handles only: no page was rendered
    assert pages.items[1999].text.strip() == "page number 2000 of the long report"
    assert not (tmp_path / "cache" / "renders").exists()
    img = pages.items[999].load_image()  # one page renders on demand, and is cached
    assert img.size == render_page(path, 1000).size
    assert len(list((tmp_path / "cache" / "renders").rglob("*.png"))) == 1


@pytest.mark.parametrize(
    "entry",
    [b"not json{", b'{"pages": 3}', b'{"pages": [["a", "layer"]], "sizes": [[1, 2], [3, 4]]}', b'{"sizes": []}'],
)
def test_a_damaged_text_cache_entry_is_recomputed(files, tmp_path, entry):
    first = pdf_pages(files["text"], cache_dir=tmp_path, ocr="never")
    (cached,) = (tmp_path / "text").glob("*.json")
    cached.write_bytes(entry)
    again = pdf_pages(files["text"], cache_dir=tmp_path, ocr="never")
    assert [it.text for it in again.items] == [it.text for it in first.items]
    assert len(json.loads(cached.read_text())["sizes"]) == len(first.items)  # rewritten whole
