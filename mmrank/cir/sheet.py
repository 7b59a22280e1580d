"""Contact sheet for composed queries: one row per query -- reference image, modification text (and the SQAF
caption when there is one), then the top results with rank and score; ground-truth hits get a green frame and a
tick, and a row whose targets are all missed from the top says so. Reuses the thumbnails of
:mod:`mmrank.vision.sheet` (an unreadable image becomes a red tile)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from mmrank.types import Query, Ranking
from mmrank.vision.sheet import _font, _short, _thumb

GREEN = (20, 150, 40)
BLUE = (20, 60, 220)


def _text_tile(lines: Sequence[tuple[str, tuple[int, int, int]]], size: int):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw

    tile = Image.new("RGB", (size, size), (255, 250, 225))
    draw = ImageDraw.Draw(tile)
    y, font = 6, _font(13)
    for text, color in lines:
        for ln in textwrap.wrap(text, width=max(8, size // 8)):
            if y > size - 16:
                return tile
            draw.text((6, y), ln, fill=color, font=font)
            y += 16
        y += 6
    return tile


def cir_sheet(
    rows: Sequence[tuple[Query, Ranking]],
    out_png: str | Path,
    *,
    k: int = 6,
    thumb: int = 150,
) -> Path:
    """Draw ``rows`` of (query, ranking) into one PNG; targets come from ``query.meta["targets"]``."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("nothing to draw")
    pad, cap = 8, 36
    ncols = 2 + k
    sheet = Image.new("RGB", (ncols * (thumb + pad) + pad, len(rows) * (thumb + cap + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    for r, (q, ranking) in enumerate(rows):
        y = pad + r * (thumb + cap + pad)
        targets = set(map(str, q.meta.get("targets", ())))
        shown = ranking.hits[:k]
        lines = [(f"modification: {q.text or '(empty)'}", (20, 20, 20))]
        caption = (ranking.query.meta if ranking.query is not None else q.meta).get("target_caption")
        if caption:
            lines.append((f"VLM caption: {caption}", (90, 60, 0)))
        if targets and not targets & {h.id for h in shown}:
            lines.append((f"target not in top {k}", (200, 30, 30)))
        tiles = [
            (_thumb(q.image, thumb) if q.image is not None else _text_tile([("(no image)", (0, 0, 0))], thumb),
             "REFERENCE", _short(str(q.meta.get("reference_id", q.id)), thumb), BLUE),
            (_text_tile(lines, thumb), f"query {q.id}", "", (40, 40, 40)),
        ]  # fmt: skip
        for rank, h in enumerate(shown, 1):
            src = h.item.image if h.item is not None else None
            ok = h.id in targets
            img = _thumb(src, thumb) if src is not None else _text_tile([(h.id, (0, 0, 0))], thumb)
            label = f"#{rank} {h.score:.3f}" + ("  TARGET" if ok else "")
            tiles.append((img, label, _short(h.id, thumb), GREEN if ok else (40, 40, 40)))
        for c, (img, line1, line2, color) in enumerate(tiles):
            x = pad + c * (thumb + pad)
            sheet.paste(img, (x, y))
            if color in (GREEN, BLUE):
                draw.rectangle([x - 3, y - 3, x + thumb + 2, y + thumb + 2], outline=color, width=4)
            draw.text((x + 2, y + thumb + 3), line1, fill=color, font=font)
            draw.text((x + 2, y + thumb + 19), line2, fill=(90, 90, 90), font=font)
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
