"""Document pages as a modality: PDF rendering (PDFium or Poppler), text layer with OCR fallback, lazy page items,
page retrieval benchmarks and document-page QA.

    from mmrank.docs import pdf_pages
    pages = pdf_pages("report.pdf")            # DocumentPages: .items (one Item per page), .warnings
    pages.items[0].load_image()                # rendered on demand, 150 dpi by default
"""

from pathlib import Path

from mmrank.docs.pages import DocumentPages, PageImage, load_pdf_folder, pdf_pages
from mmrank.docs.pdf import page_count, page_text, render_page, render_pages


def sample_pdf() -> Path:
    """A 4-page sample report bundled with mmrank (3 text pages and a scanned page that needs OCR)."""
    return Path(__file__).resolve().parents[1] / "data" / "sample" / "report.pdf"


__all__ = [
    "DocumentPages",
    "PageImage",
    "load_pdf_folder",
    "page_count",
    "page_text",
    "pdf_pages",
    "render_page",
    "render_pages",
    "sample_pdf",
]
