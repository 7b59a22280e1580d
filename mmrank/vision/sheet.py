"""Contact sheet of a query and its top results with scores: a PNG grid and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from mmrank.errors import ImageLoadError
from mmrank.types import Query, Ranking


def _font(size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _thumb(source, size: int):  # type: ignore[no-untyped-def]
    from PIL import Image

    from mmrank.types import load_image

    try:
        img = load_image(source)
    except ImageLoadError:
        img = Image.new("RGB", (size, size), (200, 60, 60))
    scale = size / max(img.width, img.height)  # fit the tile, upscaling small images too
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (245, 245, 245))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def _text_tile(text: str, size: int):  # type: ignore[no-untyped-def]
    import textwrap

    from PIL import Image, ImageDraw

    tile = Image.new("RGB", (size, size), (255, 250, 225))
    draw = ImageDraw.Draw(tile)
    lines = textwrap.wrap(text, width=max(8, size // 9))[:8]
    draw.multiline_text((8, 8), "\n".join(lines), fill=(20, 20, 20), font=_font(14), spacing=4)
    return tile


def contact_sheet(
    query: Query,
    ranking: Ranking,
    out_png: str | Path,
    out_html: str | Path | None = None,
    *,
    k: int = 10,
    thumb: int = 160,
    cols: int = 6,
) -> tuple[Path, Path | None]:
    """Draw the query (image, or its text on a tile) then the top-``k`` hits with rank, score and id.

    Hits need their items (``Ranking`` from :class:`~mmrank.vision.search.ImageSearch` carries them); an image
    that fails to load is drawn as a red tile. Returns the paths written.
    """
    from PIL import Image, ImageDraw

    hits = ranking.hits[:k]
    caption_h = 44
    tiles = [
        (
            _thumb(query.image, thumb) if query.image is not None else _text_tile(query.text or "", thumb),
            "QUERY",
            _short(str(query.meta.get("label", query.text or query.id)), thumb),
        )
    ]
    for r, h in enumerate(hits, 1):
        src = h.item.image if h.item is not None and h.item.image is not None else None
        img = _thumb(src, thumb) if src is not None else _text_tile(h.item.full_text if h.item else h.id, thumb)
        tiles.append((img, f"#{r}  {h.score:.3f}", _short(h.id, thumb)))
    ncols = min(cols, len(tiles))
    nrows = (len(tiles) + ncols - 1) // ncols
    pad = 8
    sheet = Image.new("RGB", (ncols * (thumb + pad) + pad, nrows * (thumb + caption_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    for n, (img, line1, line2) in enumerate(tiles):
        x = pad + (n % ncols) * (thumb + pad)
        y = pad + (n // ncols) * (thumb + caption_h + pad)
        sheet.paste(img, (x, y))
        color = (200, 30, 30) if n == 0 else (40, 40, 40)
        if n == 0:
            draw.rectangle([x - 3, y - 3, x + thumb + 2, y + thumb + 2], outline=color, width=3)
        draw.text((x + 2, y + thumb + 4), line1, fill=color, font=font)
        draw.text((x + 2, y + thumb + 22), line2, fill=(90, 90, 90), font=font)
    png = Path(out_png)
    png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png)
    html_path = None
    if out_html is not None:
        html_path = Path(out_html)
        html_path.write_text(_html(tiles, query), encoding="utf-8")
    return png, html_path


def _short(s: str, thumb: int) -> str:
    n = max(10, thumb // 8)
    return s if len(s) <= n else "..." + s[-(n - 3) :]


def _html(tiles, query: Query) -> str:  # type: ignore[no-untyped-def]
    cells = []
    for img, line1, line2 in tiles:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        b64 = base64.b64encode(buf.getvalue()).decode()
        cells.append(
            f'<figure><img src="data:image/png;base64,{b64}" alt="{html.escape(line2)}">'
            f"<figcaption><b>{html.escape(line1)}</b><br>{html.escape(line2)}</figcaption></figure>"
        )
    title = html.escape(query.text or str(query.meta.get("label", query.id)))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mmrank search: "
        f"{title}</title><style>body{{font-family:sans-serif}}figure{{display:inline-block;margin:6px;"
        "text-align:center}figure:first-child img{outline:3px solid #c81e1e}</style></head><body>"
        f"<h3>Query: {title}</h3>{''.join(cells)}</body></html>"
    )
