"""Why micro-batching image queries pays for CLIP and not for MobileNetV2 on a CPU: encode the same 8 query images
one at a time and as one batch of 8, in one process with one torch thread (as ``mmrank serve`` runs its model in
``benchmarks/serve_load.py``), for CLIP ViT-B/32 (open_clip architecture, seeded random weights: no CLIP weights are
offline and the cost does not depend on their values) and the real ImageNet MobileNetV2 (GeM, 224 px). Writes
``benchmarks/results/image_query_batching.md``.

    python benchmarks/image_query_batching.py --repeats 3
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=8, help="queries per batch")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "image_query_batching.md"))
    args = ap.parse_args()
    import torch
    from PIL import Image

    from benchmarks.serve_load import photo_crops
    from mmrank import registry
    from mmrank.encoders.cnn import CNNEncoder, offline_mobilenet_v2_weights

    torch.set_num_threads(1)
    torch.manual_seed(0)
    imgs = [Image.open(io.BytesIO(b)).convert("RGB") for b in photo_crops(args.n, seed=1)]
    encoders = {
        "CLIP ViT-B/32 (random init)": registry.encoder("open-clip", model="ViT-B-32", device="cpu"),
        "MobileNetV2 ImageNet, GeM 224 px": CNNEncoder(
            "mobilenet_v2",
            str(offline_mobilenet_v2_weights()),
            pooling="gem",
            resize="square",
            image_size=224,
            device="cpu",
        ),
    }
    rows = []
    for name, enc in encoders.items():
        enc.encode_images(imgs[:2])  # warm-up
        one, batch = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for im in imgs:
                enc.encode_images([im])
            one.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            enc.encode_images(imgs)
            batch.append(time.perf_counter() - t0)
        o, b = statistics.median(one), statistics.median(batch)
        rows.append((name, o, b))
        print(name, f"one by one {o * 1000:.0f} ms, batch {b * 1000:.0f} ms", flush=True)
    lines = [
        f"# image_query_batching: {args.n} query images (224 px JPEG crops), one torch thread, CPU",
        "",
        f"Command: `python benchmarks/image_query_batching.py --repeats {args.repeats}` (median of the repeats).",
        "",
        f"| encoder | {args.n} calls of 1 (ms) | 1 call of {args.n} (ms) | batched / one by one |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {o * 1000:.0f} | {b * 1000:.0f} | {b / o:.2f} |" for n, o, b in rows]
    lines += ["", f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
