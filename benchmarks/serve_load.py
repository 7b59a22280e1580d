"""Load test of ``mmrank serve``: C concurrent clients x N requests each against a server on loopback, with
micro-batching on (``--max-batch 16``) and off (``--no-batching``: one request per model call), in one run.

``--kind text`` (default) serves a dense MiniLM text index (the real all-MiniLM-L6-v2) built from a JSONL corpus;
every request is a ``POST /search`` with a different query, so each one costs a query encoding. ``--kind image``
serves two image-folder indexes over crops of the scikit-image photos, one after the other: CLIP ViT-B/32 (open_clip
architecture with seeded random weights -- no CLIP weights are available offline, and the cost of an image does not
depend on the weight values) and the real ImageNet MobileNetV2 (GeM pooling, 224 x 224); every request uploads a
different JPEG crop, so each one costs an image encoding (image queries are micro-batched through the index's
``search_batch`` like text ones). Writes a Markdown table to
``benchmarks/results/serve_load.md`` (``serve_load_image.md`` for images).

    python benchmarks/serve_load.py --clients 8 --requests 50
    python benchmarks/serve_load.py --kind image --clients 8 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.serve.conftest import start_server, stop_server  # noqa: E402

WORDS = [
    "cat",
    "dog",
    "paris",
    "france",
    "capital",
    "ranking",
    "search",
    "engine",
    "kitten",
    "puppy",
    "tower",
    "garden",
    "web",
    "passage",
    "model",
]


def corpus_lines(n: int) -> str:
    import random

    rng = random.Random(0)
    return "".join(
        json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(12))}) + "\n" for i in range(n)
    )


def photo_crops(n: int, seed: int, size: int = 224) -> list[bytes]:
    """``n`` different JPEGs: random crops (and flips) of the scikit-image photos, resized to ``size``."""
    import io
    import random

    from PIL import Image, ImageOps

    from tests.tiny_vision import skimage_photos

    rng = random.Random(seed)
    photos = [Image.fromarray(a).convert("RGB") for a in skimage_photos().values()]
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.4, 0.9)), int(h * rng.uniform(0.4, 0.9))
        x, y = rng.randrange(w - cw + 1), rng.randrange(h - ch + 1)
        crop = img.crop((x, y, x + cw, y + ch)).resize((size, size))
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


QUERY_IMAGES: list[bytes] = []  # filled for --kind image


async def client(url: str, cid: int, n: int, lat: list[float], errors: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=60) as c:
        for j in range(n):
            t0 = time.perf_counter()
            if QUERY_IMAGES:
                img = QUERY_IMAGES[(cid * n + j) % len(QUERY_IMAGES)]
                r = await c.post(url + "/search", data={"k": "10"}, files={"image": (f"q{cid}-{j}.jpg", img)})
            else:
                q = f"{WORDS[(cid * 7 + j) % len(WORDS)]} {WORDS[(cid + j * 3) % len(WORDS)]} query {cid}-{j}"
                r = await c.post(url + "/search", data={"text": q, "k": "10"})
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.text[:100]}")


async def load(url: str, clients: int, n: int) -> dict[str, float]:
    lat: list[float] = []
    errors: list[str] = []
    await client(url, 999, 3, [], [])  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(client(url, c, n, lat, errors) for c in range(clients)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "req_per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "errors": len(errors),
    }


def build_indexes(tmp: Path, image: bool, docs: int) -> list[tuple[str, Path]]:
    """``[(encoder label, index folder)]``: one MiniLM text index, or a CLIP and a MobileNetV2 image index."""
    if not image:
        from mmrank.retrieve.text_index import index_corpus

        corpus = tmp / "corpus.jsonl"
        corpus.write_text(corpus_lines(docs))
        index_corpus(corpus, tmp / "idx", retriever="dense")
        return [("MiniLM-L6 (dense text)", tmp / "idx")]
    import open_clip
    import torch

    from mmrank import registry
    from mmrank.encoders.cnn import CNNEncoder, offline_mobilenet_v2_weights
    from mmrank.vision import index_folder

    gallery = tmp / "photos"
    gallery.mkdir()
    for i, data in enumerate(photo_crops(docs, seed=0)):
        (gallery / f"g{i:04d}.jpg").write_bytes(data)
    # no CLIP weights offline: the ViT-B/32 architecture with seeded random weights costs the same per image
    torch.manual_seed(0)
    ckpt = tmp / "vit-b-32-random.pt"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), ckpt)
    clip = registry.encoder("open-clip", model="ViT-B-32", pretrained=str(ckpt), device="cpu")
    index_folder(gallery, tmp / "clip-idx", encoder=clip, index="exact")
    weights = str(offline_mobilenet_v2_weights())
    cnn = CNNEncoder("mobilenet_v2", weights, pooling="gem", resize="square", image_size=224, device="cpu")
    index_folder(gallery, tmp / "cnn-idx", encoder=cnn, index="exact")
    return [
        ("CLIP ViT-B/32 (random init)", tmp / "clip-idx"),
        ("MobileNetV2 ImageNet, GeM 224 px", tmp / "cnn-idx"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50, help="per client")
    ap.add_argument("--kind", choices=("text", "image"), default="text", help="text or image queries")
    ap.add_argument("--docs", type=int, default=2000, help="corpus size (images: gallery size, default 200)")
    ap.add_argument("--out", help="result table (default benchmarks/results/serve_load[_image].md)")
    args = ap.parse_args()
    image = args.kind == "image"
    out = args.out or str(REPO / "benchmarks" / "results" / ("serve_load_image.md" if image else "serve_load.md"))
    docs = 200 if image and args.docs == 2000 else args.docs
    if image:
        QUERY_IMAGES[:] = photo_crops(args.clients * args.requests, seed=1)

    rows: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for enc_label, idx in build_indexes(Path(tmp), image, docs):
            for label, flags in [("micro-batched (max 16, 5 ms)", []), ("one by one", ["--no-batching"])]:
                proc, url = start_server([str(idx), *flags])
                try:
                    rows[enc_label, label] = asyncio.run(load(url, args.clients, args.requests))
                finally:
                    stop_server(proc)
                print(enc_label, label, rows[enc_label, label], flush=True)
    what = (
        f"image uploads (224 px JPEG crops), image-folder indexes of {docs} photos"
        if image
        else f"text queries, dense MiniLM index of {docs} docs"
    )
    flag = " --kind image" if image else ""
    lines = [
        f"# serve_load: {args.clients} clients x {args.requests} POST /search, {what}",
        "",
        f"Command: `python benchmarks/serve_load.py{flag} --clients {args.clients} --requests {args.requests}` (CPU, "
        "loopback, server and clients on the same machine; the server runs its model with one thread).",
        "",
        "| encoder | mode | requests | req/s | p50 ms | p99 ms | errors | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (enc_label, label), r in rows.items():
        base = rows[enc_label, "one by one"]["req_per_s"]
        lines.append(
            f"| {enc_label} | {label} | {r['requests']} | {r['req_per_s']:.1f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} | {r['req_per_s'] / base:.2f}x |"
        )
    lines += ["", f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
