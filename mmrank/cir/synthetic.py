"""A small synthetic composed-retrieval set made from real photographs (the ones shipped in scikit-image).

Each photo is a reference; each edit (flip, grey, blue tint, upside down) makes a target, and the query is the
photo plus the edit's instruction ("flip it horizontally"). The gallery holds every original and every edited
image, so the right answer is always one edited copy of the reference among its other edits and the other photos.
It checks the CIR pipeline end to end offline; with random tiny models it measures plumbing and cost, not quality.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mmrank.types import Corpus, Item, Qrels, Query

PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle",
)


def photo(name: str) -> np.ndarray:
    """One of the scikit-image colour photos as an RGB array (``"motorcycle"``: the left stereo view)."""
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def _edits() -> dict[str, tuple[str, Callable]]:
    from PIL import Image, ImageOps

    def tint(img: Image.Image) -> Image.Image:
        grey = ImageOps.grayscale(img)
        return ImageOps.colorize(grey, black=(0, 0, 60), white=(170, 200, 255))

    return {
        "flip": ("flip it horizontally", ImageOps.mirror),
        "grey": ("make it black and white", lambda im: ImageOps.grayscale(im).convert("RGB")),
        "blue": ("give it a strong blue colour tint", tint),
        "upside": ("turn it upside down", lambda im: im.rotate(180)),
    }


def synthetic_cir(
    directory: str | Path, *, size: int = 128, photos: Sequence[str] = PHOTOS, edits: Sequence[str] | None = None
) -> tuple[Corpus, list[Query], Qrels]:
    """Write the images under ``directory/images`` (PNG, ``size`` px on the long side) and a ``queries.jsonl``
    (the :func:`mmrank.cir.folder.load_cir_queries` format, paths relative to ``images/``); return
    ``(gallery, queries, qrels)``.

    Query ids are ``"<photo>-<edit>"``; the reference image is excluded from its own ranking (``meta["exclude"]``).
    """
    import json

    from PIL import Image

    root = Path(directory)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    table = _edits()
    names = list(edits or table)
    items, queries, qrels, lines = [], [], {}, []
    for p in photos:
        img = Image.fromarray(photo(p)).convert("RGB")
        img.thumbnail((size, size), Image.Resampling.BICUBIC)
        ref = img_dir / f"{p}.png"
        img.save(ref)
        items.append(Item(p, image=ref))
        for e in names:
            text, fn = table[e]
            tid = f"{p}_{e}"
            path = img_dir / f"{tid}.png"
            fn(img).save(path)
            items.append(Item(tid, image=path))
            qid = f"{p}-{e}"
            meta = {"reference_id": p, "exclude": [p], "targets": [tid]}
            queries.append(Query(qid, text=text, image=ref, meta=meta))
            qrels[qid] = {tid: 1}
            lines.append({"id": qid, "reference": f"{p}.png", "text": text, "target": f"{tid}.png"})
    (root / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return Corpus(items, name="synthetic-cir"), queries, qrels
