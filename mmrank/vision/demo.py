"""Image search demo over real photos shipped in scikit-image, with the real offline MobileNetV2 weights."""

from __future__ import annotations

import tempfile
from pathlib import Path


def _write_demo_images(folder: Path) -> dict[str, Path]:
    from PIL import Image, ImageOps
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = {
        "astronaut": data.astronaut(),
        "chelsea_cat": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "hubble_deep_field": data.hubble_deep_field(),
        "immunohistochemistry": data.immunohistochemistry(),
        "motorcycle": data.stereo_motorcycle()[0],
        "colorwheel": data.colorwheel(),
    }
    out = {}
    for name, arr in photos.items():
        img = Image.fromarray(arr).convert("RGB")
        img.thumbnail((320, 320))
        out[name] = folder / f"{name}.jpg"
        img.save(out[name], quality=90)
    queries = {}
    for name in ("chelsea_cat", "coffee", "rocket"):  # held-out queries: mirrored, cropped, darker copies
        img = Image.open(out[name])
        w, h = img.size
        q = ImageOps.mirror(img.crop((w // 8, h // 8, w - w // 8, h - h // 8)))
        q = q.point(lambda v: int(v * 0.8))
        queries[name] = folder.parent / f"query_{name}.jpg"
        q.save(queries[name], quality=85)
    return queries


def run_image_demo(workdir: str | Path | None = None, *, sheet: bool = True) -> list[str]:
    """Index 8 skimage photos with SuperGlobal descriptors (real ImageNet MobileNetV2 weights), query with
    edited copies of three of them, and return the lines to print (plus the contact sheet path)."""
    from mmrank.encoders.cnn import offline_mobilenet_v2_weights, superglobal_encoder
    from mmrank.errors import MissingDependencyError
    from mmrank.vision.index import index_folder
    from mmrank.vision.search import ImageSearch
    from mmrank.vision.sheet import contact_sheet

    try:
        offline_mobilenet_v2_weights()
    except MissingDependencyError as e:  # a demo on random weights would mislead: say what to install instead
        return [f"(image demo skipped: {e})"]
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="mmrank-image-demo-"))
    queries = _write_demo_images(base / "photos")
    enc = superglobal_encoder("mobilenet_v2", "default", device="cpu")
    report = index_folder(base / "photos", base / "index", encoder=enc)
    lines = [
        "Image search (SuperGlobal descriptors, MobileNetV2 ImageNet weights, scikit-image photos)",
        report.summary(),
    ]
    engine = ImageSearch(base / "index", encoder=enc)
    for name, qpath in queries.items():
        ranking = engine.search(str(qpath), k=3)
        top = ", ".join(f"{h.id} ({h.score:.3f})" for h in ranking.hits)
        mark = "ok" if ranking.hits[0].id == f"{name}.jpg" else "MISS"
        lines.append(f"query {qpath.name} -> {top}  [{mark}]")
        if sheet and name == "chelsea_cat":
            png, _ = contact_sheet(ranking.query, ranking, base / "sheet_chelsea.png", base / "sheet_chelsea.html", k=5)  # type: ignore[arg-type]
            lines.append(f"contact sheet: {png}")
    return lines
