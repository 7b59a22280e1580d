"""Batched image encoding throughput: mmrank's ``OpenCLIPEncoder.encode_images`` (lazy decoding in a DataLoader,
pinned memory + autocast on CUDA) against a plain loop that decodes the same images and calls the same model with
the same batch size and precision, side by side in one run. Model: open_clip ViT-B-32 architecture with random
weights (no CLIP weights can be downloaded here; throughput does not depend on the weights).

    .venv/bin/python benchmarks/vision_encode_throughput.py [--n 128] [--batch-size 32] [--device cpu]

Writes ``benchmarks/results/vision_encode_throughput_<device>.md`` and ``.json``.
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

from mmrank.encoders.clip import OpenCLIPEncoder

ROOT = Path(__file__).resolve().parents[1]


def image_paths(n: int, data: Path, scratch: Path) -> list[Path]:
    listed = sorted((data / "images").rglob("*.jpg")) if data.is_dir() else []
    if not listed:  # fall back to real scikit-image photos
        from skimage import data as skd

        scratch.mkdir(parents=True, exist_ok=True)
        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            Image.fromarray(getattr(skd, name)()).save(scratch / f"{name}.jpg")
        listed = sorted(scratch.glob("*.jpg"))
    return [listed[i % len(listed)] for i in range(n)]


def plain_loop(enc: OpenCLIPEncoder, paths: list[Path], bs: int) -> np.ndarray:
    """What a user writes by hand: open, preprocess, stack, encode, normalise; same batch size and precision."""
    cuda = enc.device.type == "cuda"
    out = []
    with torch.inference_mode():
        for s in range(0, len(paths), bs):
            x = torch.stack([enc.preprocess(Image.open(p).convert("RGB")) for p in paths[s : s + bs]]).to(enc.device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                f = enc.model.encode_image(x)
            out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "flowers6"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    load_start = os.getloadavg()[0]
    enc = OpenCLIPEncoder("ViT-B-32", None, device=args.device, batch_size=args.batch_size)
    dev = enc.device
    paths = image_paths(args.n, Path(args.data), Path("/tmp/mmrank-throughput-images"))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # warm-up both paths (kernels, allocator, file cache)
    plain_loop(enc, paths[: args.batch_size], args.batch_size)
    enc.encode_images(paths[: args.batch_size])
    times: dict[str, list[float]] = {"plain loop": [], "mmrank encode_images": []}
    for _ in range(args.rounds):  # alternate so load changes hit both paths alike
        sync()
        t0 = time.perf_counter()
        ref = plain_loop(enc, paths, args.batch_size)
        sync()
        times["plain loop"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = enc.encode_images(paths).vectors
        sync()
        times["mmrank encode_images"].append(time.perf_counter() - t0)
    diff = float(np.abs(ref - got).max())
    rate = {k: len(paths) / statistics.median(v) for k, v in times.items()}
    ratio = rate["mmrank encode_images"] / rate["plain loop"]
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else (platform.processor() or "cpu")
    source = "flowers6" if "flowers6" in str(paths[0]) else "skimage"
    meta = {
        "model": "open_clip ViT-B-32, random weights",
        "images": f"{len(paths)} JPEGs ({source}), batch {args.batch_size}",
        "device": f"{dev.type} ({name}), torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs",
        "precision": "fp16 autocast" if dev.type == "cuda" else "fp32",
        "rounds": args.rounds,
        "load_average_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "max_abs_diff_between_paths": diff,
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"vision_encode_throughput_{dev.type}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "seconds": times, "images_per_s": rate, "ratio": ratio}, indent=2)
    )
    lines = [
        "# Batched image encoding throughput: mmrank vs a plain loop (same model, images, batch size, precision)",
        "",
        f"Produced by `benchmarks/vision_encode_throughput.py`. {meta['model']}; {meta['images']};",
        f"{meta['precision']}.",
        f"Device: {meta['device']}. Median of {args.rounds} alternating rounds after a warm-up.",
        f"Load average (1 min) at start / end: {meta['load_average_1min_start_end']} (other jobs share the machine).",
        "",
        "| path | images/s | seconds per round |",
        "|---|---|---|",
    ]
    for k, v in times.items():
        lines.append(f"| {k} | {rate[k]:.2f} | {', '.join(f'{t:.2f}' for t in v)} |")
    lines += ["", f"mmrank / plain loop = **{ratio:.3f}x**; max |difference| between the two outputs = {diff:.2e}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
