"""PDFs generated for the tests (reportlab, pypdf): text pages, a scanned page, and bad files."""

from __future__ import annotations

from pathlib import Path

TEXTS = [
    "Quarterly revenue grew by twelve percent in the northern region.",
    "The committee approved the new safety protocol for chemical storage.",
    "Migration patterns of arctic terns span both polar regions each year.",
]
SCANNED_TEXT = "INVOICE TOTAL 4520 EUROS"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def text_pdf(path: Path, texts: list[str] = TEXTS, **canvas_kw) -> Path:  # type: ignore[no-untyped-def]
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, **canvas_kw)
    for t in texts:
        c.setFont("Helvetica", 14)
        c.drawString(72, 750, t)
        c.showPage()
    c.save()
    return path


def scanned_pdf(path: Path) -> Path:
    """One text page, then a page that is only an image of text (no text layer)."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.new("RGB", (1200, 300), "white")
    try:
        font = ImageFont.truetype(FONT, 72)
    except OSError:
        font = ImageFont.load_default(size=72)
    ImageDraw.Draw(img).text((40, 100), SCANNED_TEXT, fill="black", font=font)
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("Helvetica", 14)
    c.drawString(72, 750, TEXTS[0])
    c.showPage()
    c.drawImage(ImageReader(img), 40, 500, width=500, height=125)
    c.showPage()
    c.save()
    return path


def bad_files(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    good = text_pdf(d / "good.pdf")
    out = {"good": good}
    out["encrypted"] = text_pdf(d / "encrypted.pdf", encrypt="secret")
    data = good.read_bytes()
    (d / "truncated.pdf").write_bytes(data[: len(data) // 3])
    out["truncated"] = d / "truncated.pdf"
    (d / "html.pdf").write_text("<!DOCTYPE html><html><body>not a pdf</body></html>")
    out["html"] = d / "html.pdf"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(d / "image.pdf", format="PNG")
    out["image"] = d / "image.pdf"
    (d / "empty.pdf").write_bytes(b"")
    out["empty"] = d / "empty.pdf"
    from pypdf import PdfWriter

    with open(d / "zero_pages.pdf", "wb") as f:
        PdfWriter().write(f)
    out["zero_pages"] = d / "zero_pages.pdf"
    return out
