"""Document pages as a modality: PDF rendering (PDFium or Poppler), text layer with OCR fallback, lazy page items,
page retrieval benchmarks and document-page QA.

    from mmrank.docs import pdf_pages
    pages = pdf_pages("report.pdf")            # DocumentPages: .items (one Item per page), .warnings
    pages.items[0].load_image()                # rendered on demand, 150 dpi by default
"""

from mmrank.docs.pages import DocumentPages, PageImage, load_pdf_folder, pdf_pages
from mmrank.docs.pdf import page_count, page_text, render_page

__all__ = ["DocumentPages", "PageImage", "load_pdf_folder", "page_count", "page_text", "pdf_pages", "render_page"]
