"""EBR's candidate grid: the top-K candidate images tiled into one image with a visible index mark on each cell.

SQUARE (arXiv 2509.26330, stage 2) shows the MLLM "an image grid with visual marks"; the layout, the marks and the
size are not public [gap]. mmrank's defaults, all parameters of :class:`GridSpec`:

* ``cols = ceil(sqrt(K))`` (3x3 for 9, 4x4 for 16, as the Milvus grid reranker's 3x3 / 5x5), row-major order, so
  candidate ``i`` (SQAF rank ``i``) carries the mark ``first_index + i`` (1-based by default: "1" is the best
  first-stage candidate).
* The grid fits the VLM's pixel budget (``max_pixels``; 1280*28*28 = 1,003,520, the Qwen2-VL setting most used in
  practice) and its sides are multiples of ``align`` (28 = Qwen2-VL's 14-px patch x 2x2 merge), so the processor
  does not resample it and what :func:`make_grid` saves is exactly what the model sees.
* Marks: bold digits in a filled box at the cell's top-left, the digit height ``mark_scale`` (0.2) of the cell
  side but at least ``min_mark_px`` (20 px), white on red with a dark outline -- legible on any photograph.
* The reference image is passed to the VLM as a separate image by default; ``reference="cell"`` puts it in the
  grid's first cell instead, with a thick blue border and the mark "REF" (the Milvus design).

Each image is letterboxed into its cell (aspect ratio kept) on a light grey background, cells separated by a
``gap``-pixel white line. A candidate whose image cannot be decoded is drawn as a grey cell with its mark and "?",
and listed by :func:`make_grid` so the caller records a fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrank.errors import ImageLoadError
from mmrank.types import ImageSource, load_image

if TYPE_CHECKING:
    from PIL import Image as PILImage

DEFAULT_MAX_PIXELS = 1280 * 28 * 28
_BOLD_FONTS = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "Arial Bold.ttf")


@dataclass(frozen=True)
class GridSpec:
    """Layout and mark style of the EBR grid (see the module docstring for the defaults' rationale)."""

    cols: int | None = None  # None: ceil(sqrt(n_cells))
    cell: int = 336  # preferred cell side in pixels, shrunk to fit max_pixels
    max_pixels: int = DEFAULT_MAX_PIXELS
    align: int = 28
    gap: int = 4
    first_index: int = 1
    mark_scale: float = 0.2
    min_mark_px: int = 20
    mark_position: str = "top-left"  # top-left | top-right | bottom-left | bottom-right | center
    mark_fg: tuple[int, int, int] = (255, 255, 255)
    mark_bg: tuple[int, int, int] = (200, 20, 20)
    mark_outline: tuple[int, int, int] = (0, 0, 0)
    background: tuple[int, int, int] = (235, 235, 235)
    reference_color: tuple[int, int, int] = (20, 60, 220)
    reference_border: int = 8
    font: str | None = None  # a TrueType file; default: DejaVu Sans Bold, else Pillow's built-in font
    extra: dict[str, Any] = field(default_factory=dict)

    def layout(self, n_cells: int) -> tuple[int, int, int]:
        """``(cols, rows, cell)`` for ``n_cells``: the cell shrinks until the aligned grid fits ``max_pixels``."""
        if n_cells < 1:
            raise ValueError("a grid needs at least one cell")
        cols = self.cols or math.ceil(math.sqrt(n_cells))
        rows = math.ceil(n_cells / cols)
        cell = self.cell
        while cell > 8:
            w, h = self.size(cols, rows, cell)
            if w * h <= self.max_pixels:
                break
            cell -= 1
        return cols, rows, cell

    def size(self, cols: int, rows: int, cell: int) -> tuple[int, int]:
        w = cols * cell + (cols + 1) * self.gap
        h = rows * cell + (rows + 1) * self.gap
        a = max(1, self.align)
        return math.ceil(w / a) * a, math.ceil(h / a) * a

    def mark_px(self, cell: int) -> int:
        return max(self.min_mark_px, round(self.mark_scale * cell))


@cache
def _font(size: int, path: str | None):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    for cand in ([path] if path else []) + list(_BOLD_FONTS):
        try:
            return ImageFont.truetype(cand, size)
        except OSError:
            continue
    if path:
        raise ImageLoadError(f"font {path!r} cannot be loaded")
    return ImageFont.load_default(size=size)


def _fit(img: PILImage.Image, side: int, background: tuple[int, int, int]) -> PILImage.Image:
    from PIL import Image

    scale = side / max(img.width, img.height)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    canvas = Image.new("RGB", (side, side), background)
    canvas.paste(img.resize((w, h), Image.Resampling.BICUBIC), ((side - w) // 2, (side - h) // 2))
    return canvas


def _draw_mark(draw: Any, x: int, y: int, cell: int, label: str, spec: GridSpec, bg: tuple[int, int, int]) -> None:
    px = spec.mark_px(cell)
    font = _font(px, spec.font)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font, stroke_width=max(1, px // 14))
    tw, th = right - left, bottom - top
    pad = max(3, px // 5)
    bw, bh = tw + 2 * pad, th + 2 * pad
    pos = spec.mark_position
    bx = x + 2 if "left" in pos else x + cell - bw - 2 if "right" in pos else x + (cell - bw) // 2
    by = y + 2 if "top" in pos else y + cell - bh - 2 if "bottom" in pos else y + (cell - bh) // 2
    draw.rectangle([bx, by, bx + bw, by + bh], fill=bg, outline=spec.mark_outline, width=max(1, px // 12))
    draw.text(
        (bx + pad - left, by + pad - top),
        label,
        font=font,
        fill=spec.mark_fg,
        stroke_width=max(1, px // 14),
        stroke_fill=spec.mark_outline,
    )


def make_grid(
    images: Sequence[ImageSource | PILImage.Image],
    spec: GridSpec | None = None,
    *,
    reference: ImageSource | PILImage.Image | None = None,
    save: str | Path | None = None,
) -> tuple[PILImage.Image, list[int]]:
    """Tile ``images`` (best first-stage candidate first) into one marked grid.

    With ``reference`` the reference image takes the first cell (blue border, mark "REF") and the candidates
    follow. Returns ``(grid, unreadable)``: the indices of candidates drawn as placeholders. ``save`` writes a PNG.
    """
    from PIL import Image, ImageDraw

    spec = spec or GridSpec()
    cells: list[tuple[Any, str, bool]] = []
    if reference is not None:
        cells.append((reference, "REF", True))
    cells += [(src, str(spec.first_index + i), False) for i, src in enumerate(images)]
    cols, rows, cell = spec.layout(len(cells))
    width, height = spec.size(cols, rows, cell)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    unreadable: list[int] = []
    for n, (src, label, is_ref) in enumerate(cells):
        x = spec.gap + (n % cols) * (cell + spec.gap)
        y = spec.gap + (n // cols) * (cell + spec.gap)
        try:
            img = load_image(src) if not isinstance(src, Image.Image) else src.convert("RGB")
            tile = _fit(img, cell, spec.background)
        except ImageLoadError:
            if is_ref:
                raise
            unreadable.append(n - (1 if reference is not None else 0))
            tile = Image.new("RGB", (cell, cell), (150, 150, 150))
            ImageDraw.Draw(tile).text(
                (cell // 2, cell // 2), "?", font=_font(spec.mark_px(cell), spec.font), anchor="mm"
            )
        grid.paste(tile, (x, y))
        inset = spec.reference_border if is_ref else 0
        if is_ref:
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=spec.reference_color, width=inset)
        bg = spec.reference_color if is_ref else spec.mark_bg
        _draw_mark(draw, x + inset, y + inset, cell - 2 * inset, label, spec, bg)
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
    return grid, unreadable
