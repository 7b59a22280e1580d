"""Miniature CIRR / CIRCO / FashionIQ trees in the official layouts, with real photos (scikit-image) as images.

Each writer returns the root (annotations and images together, as the datasets ship them). Images are the
synthetic CIR photos: a reference and its edited copies, so the annotations are meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from mmrank.cir.synthetic import synthetic_cir

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _photos(tmp: Path) -> dict[str, Path]:
    corpus, _, _ = synthetic_cir(tmp.parent / f"_{tmp.name}_photos", size=48, photos=PHOTOS, edits=("flip", "grey"))
    return {i: Path(it.image) for i, it in corpus.items()}  # type: ignore[arg-type]


def _copy(src: Path, dst: Path, fmt: str = "PNG") -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").save(dst, format=fmt)


def write_mini_cirr(root: Path) -> Path:
    """12 dev images, 4 val triplets (target = a flipped / grey copy), 2 test1 queries."""
    photos = _photos(root)
    names = {pid: f"dev-{n}-0-img0" for n, pid in enumerate(sorted(photos))}
    split = {}
    for pid, name in names.items():
        _copy(photos[pid], root / "img_raw" / "dev" / f"{name}.png")
        split[name] = f"./dev/{name}.png"
    val = []
    for n, p in enumerate(PHOTOS):
        ref, tgt = names[p], names[f"{p}_flip" if n % 2 == 0 else f"{p}_grey"]
        others = [v for k, v in names.items() if v not in (ref, tgt)][n : n + 4]
        val.append(
            {
                "pairid": 100 + n,
                "reference": ref,
                "target_hard": tgt,
                "target_soft": {tgt: 1.0},
                "caption": "flip it horizontally" if n % 2 == 0 else "make it black and white",
                "img_set": {"id": n, "members": [ref, tgt, *others], "reference_rank": 0, "target_rank": 1},
            }
        )
    tnames = {pid: f"test1-{n}-0-img0" for n, pid in enumerate(sorted(photos))}
    tsplit = {}
    for pid, name in tnames.items():
        _copy(photos[pid], root / "img_raw" / "test1" / f"{name}.png")
        tsplit[name] = f"./test1/{name}.png"
    test = []
    for n, p in enumerate(PHOTOS[:2]):
        members = [tnames[p], tnames[f"{p}_flip"], tnames[f"{p}_grey"]] + [
            tnames[PHOTOS[n + 2]],
            *list(tnames.values())[:2],
        ]
        test.append(
            {"pairid": 200 + n, "reference": tnames[p], "caption": "flip it", "img_set": {"id": n, "members": members}}
        )
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "image_splits").mkdir(parents=True, exist_ok=True)
    (root / "captions" / "cap.rc2.val.json").write_text(json.dumps(val))
    (root / "captions" / "cap.rc2.test1.json").write_text(json.dumps(test))
    (root / "image_splits" / "split.rc2.val.json").write_text(json.dumps(split))
    (root / "image_splits" / "split.rc2.test1.json").write_text(json.dumps(tsplit))
    return root


def write_mini_circo(root: Path) -> Path:
    """12 COCO-style images (<id>.jpg), 3 val queries with several ground truths, 2 test queries."""
    photos = _photos(root)
    ids = {pid: 1000 + n for n, pid in enumerate(sorted(photos))}
    folder = root / "COCO2017_unlabeled" / "unlabeled2017"
    for pid, i in ids.items():
        _copy(photos[pid], folder / f"{i:012d}.jpg", "JPEG")
    val = []
    for n, p in enumerate(PHOTOS[:3]):
        gts = [ids[f"{p}_flip"], ids[f"{p}_grey"]]
        val.append(
            {
                "id": n,
                "reference_img_id": ids[p],
                "target_img_id": gts[0],
                "relative_caption": "is mirrored",
                "shared_concept": p,
                "gt_img_ids": gts,
                "semantic_aspects": ["viewpoint"],
            }
        )
    test = [
        {"id": n, "reference_img_id": ids[p], "relative_caption": "is grey", "shared_concept": p}
        for n, p in enumerate(PHOTOS[:2])
    ]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "val.json").write_text(json.dumps(val))
    (root / "annotations" / "test.json").write_text(json.dumps(test))
    return root


def write_mini_fashioniq(root: Path) -> Path:
    """Three categories over the same 12 images (ASIN-like names), 2 val triplets each."""
    photos = _photos(root)
    asin = {pid: f"B{n:09d}" for n, pid in enumerate(sorted(photos))}
    for pid, a in asin.items():
        _copy(photos[pid], root / "images" / f"{a}.png")
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "image_splits").mkdir(parents=True, exist_ok=True)
    for c, cat in enumerate(("dress", "shirt", "toptee")):
        trip = [
            {"candidate": asin[p], "target": asin[f"{p}_flip"], "captions": ["is mirrored.", "faces the other way"]}
            for p in PHOTOS[c : c + 2]
        ]
        (root / "captions" / f"cap.{cat}.val.json").write_text(json.dumps(trip))
        (root / "image_splits" / f"split.{cat}.val.json").write_text(json.dumps(sorted(asin.values())))
    return root
