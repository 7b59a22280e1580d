"""CNN encoding throughput: mmrank's ``CNNEncoder`` (default aspect-preserving input, size-bucketed batches, lazy
decoding, bad-file handling) against a plain torchvision loop that decodes the same images and runs the same
MobileNetV2 + GeM at the same resolution and batch size, side by side in one run with interleaved rounds.

    .venv/bin/python benchmarks/cnn_encode_throughput.py [--n 240] [--batch-size 32] [--rounds 3]

Images: the flowers6 photos in ../shared/data (224x224 JPEGs) or, without them, scikit-image photos.
Writes ``benchmarks/results/cnn_encode_throughput.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmrank.encoders.cnn import CNNEncoder

ROOT = Path(__file__).resolve().parents[1]


def image_paths(n: int, data: Path, scratch: Path) -> list[Path]:
    listed = sorted(data.rglob("*.jpg")) if data.is_dir() else []
    if not listed:
        from skimage import data as skd

        scratch.mkdir(parents=True, exist_ok=True)
        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            Image.fromarray(getattr(skd, name)()).convert("RGB").resize((224, 224)).save(scratch / f"{name}.jpg")
        listed = sorted(scratch.glob("*.jpg"))
    return [listed[i % len(listed)] for i in range(n)]


def plain_loop(enc: CNNEncoder, paths: list[Path], bs: int) -> np.ndarray:
    """What a user writes by hand: open, to tensor, normalise, stack, backbone, GeM (p=3), L2."""
    from torchvision.transforms import functional as TF

    mean, std = list(enc.backbone.mean), list(enc.backbone.std)
    out = []
    with torch.inference_mode():
        for s in range(0, len(paths), bs):
            x = torch.stack(
                [TF.normalize(TF.to_tensor(Image.open(p).convert("RGB")), mean, std) for p in paths[s : s + bs]]
            )
            f = enc.backbone(x.to(enc.device)).float()
            g = f.clamp(min=1e-6).pow(3.0).mean(dim=(2, 3)).pow(1.0 / 3.0)
            out.append(torch.nn.functional.normalize(g, dim=-1).cpu().numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "flowers6" / "images"))
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cnn_encode_throughput"))
    args = ap.parse_args()
    paths = image_paths(args.n, Path(args.data), Path("/tmp/mmrank_cnn_bench"))
    sizes = sorted({Image.open(p).size for p in paths})
    try:
        enc = CNNEncoder("mobilenet_v2", "default", pooling="gem", device="cpu", batch_size=args.batch_size)
        weights = enc.weights_desc
    except Exception:  # no offline weights: throughput does not depend on them
        enc = CNNEncoder("mobilenet_v2", None, pooling="gem", device="cpu", batch_size=args.batch_size)
        weights = "random init"
    enc.encode_images(paths[:4])  # warm-up
    plain_loop(enc, paths[:4], 4)
    times: dict[str, list[float]] = {"plain torchvision loop": [], "mmrank CNNEncoder.encode_images": []}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        t = time.perf_counter()
        ref = plain_loop(enc, paths, args.batch_size)
        times["plain torchvision loop"].append(time.perf_counter() - t)
        t = time.perf_counter()
        got = enc.encode_images(paths).vectors
        times["mmrank CNNEncoder.encode_images"].append(time.perf_counter() - t)
    diff = float(np.abs(got - ref).max())
    base = statistics.median(times["plain torchvision loop"])
    rows = [
        {"path": k, "images_per_s": args.n / statistics.median(v), "ratio_vs_plain": base / statistics.median(v)}
        for k, v in times.items()
    ]
    meta = {
        "command": f"python benchmarks/cnn_encode_throughput.py --n {args.n} --batch-size {args.batch_size} "
        f"--rounds {args.rounds}",
        "model": f"mobilenet_v2 ({weights}), GeM p=3, input at the images' own size {sizes} (max side 1024)",
        "machine": f"{platform.machine()} cpu, {os.cpu_count()} cores, torch threads={torch.get_num_threads()}",
        "load_avg_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "max_abs_descriptor_diff": diff,
    }
    lines = [
        "# CNN encoding: mmrank CNNEncoder vs a plain torchvision loop (same images, resolution, batch size)",
        "",
        *[f"- {k}: {v}" for k, v in meta.items()],
        "",
        "| path | images / s (median of rounds) | ratio vs plain loop |",
        "|---|---|---|",
        *[f"| {r['path']} | {r['images_per_s']:.1f} | **{r['ratio_vs_plain']:.2f}x** |" for r in rows],
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
