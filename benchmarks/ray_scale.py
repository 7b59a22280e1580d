"""Ray Data vs single process: encode one corpus into a dense MiniLM text index with the single-process path and
with ``engine="ray"`` at 1 and 2 workers (a local Ray runtime), check the vectors are identical (max |diff| <=
1e-5, same ids), and report items/s and Ray's overhead. Writes ``benchmarks/results/ray_scale.md``.

    python benchmarks/ray_scale.py --docs 2000
    python benchmarks/ray_scale.py --kind image --docs 300   # image folder, ImageNet MobileNetV2 (GeM, 224 px)

``--kind image`` indexes a folder of JPEG crops of the scikit-image photos with ``index_folder`` (no embedding
cache) and writes ``benchmarks/results/ray_scale_image.md``.

On a machine with few cores the Ray runs pay actor start-up (each actor loads the model) and serialisation; the
table says what this machine measured, no more.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


Row = tuple[str, float, float, bool]


def time_rows(build: Callable[..., None], load: Callable[[Path], Any], tmp: Path, workers: str) -> list[Row]:
    """Time ``build(out)`` single-process, then ``build(out, engine="ray", workers=w)`` for each ``w``; each row
    also says whether the Ray index's ids and vectors equal the single-process one's (max |diff| <= 1e-5)."""
    from mmrank.scale.ray_engine import init_ray

    t0 = time.perf_counter()
    build(tmp / "local")
    local_s = time.perf_counter() - t0
    ref = load(tmp / "local")
    rows: list[Row] = [("single process", local_s, 0.0, True)]
    init_ray(num_cpus=os.cpu_count())
    for w in [int(x) for x in workers.split(",")]:
        out = tmp / f"ray{w}"
        t0 = time.perf_counter()
        build(out, engine="ray", workers=w)
        secs = time.perf_counter() - t0
        got = load(out)
        same = got.ids == ref.ids and float(np.abs(got.vectors - ref.vectors).max()) <= 1e-5
        rows.append((f"Ray, {w} worker(s)", secs, secs - local_s, same))
        print(rows[-1], flush=True)
    return rows


def write_table(rows: list[Row], docs: int, head: list[str], out: str) -> None:
    """``head`` then the rows as a markdown table and the load average; written to ``out`` and printed."""
    lines = [*head, "", "| path | seconds | items/s | vs single process | identical vectors |", "|---|---|---|---|---|"]
    for name, secs, over, same in rows:
        lines.append(
            f"| {name} | {secs:.1f} | {docs / secs:.1f} | {'' if name == 'single process' else f'{over:+.1f} s'}"
            f" | {'yes' if same else 'NO'} |"
        )
    lines += ["", f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    Path(out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--kind", choices=("text", "image"), default="text")
    ap.add_argument("--out", help="default benchmarks/results/ray_scale[_image].md")
    args = ap.parse_args()
    if args.kind == "image":
        image_main(args)
        return
    from mmrank.retrieve.text_index import TextSearch, index_corpus

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text(
            "".join(
                json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))})
                + "\n"
                for i in range(args.docs)
            )
        )

        def build(out: Path, **kw: Any) -> None:
            index_corpus(corpus, out, retriever="dense", batch_size=args.batch_size, **kw)

        rows = time_rows(build, lambda p: TextSearch(p).index, Path(tmp), args.workers)
    head = [
        f"# ray_scale: dense MiniLM index of {args.docs} synthetic passages, batch {args.batch_size}",
        "",
        f"Command: `python benchmarks/ray_scale.py --docs {args.docs}` on this machine ({os.cpu_count()} CPU cores, "
        "shared; local Ray runtime started once, before the Ray rows).",
    ]
    write_table(rows, args.docs, head, args.out or str(REPO / "benchmarks" / "results" / "ray_scale.md"))


def image_main(args: argparse.Namespace) -> None:
    from benchmarks.serve_load import photo_crops
    from mmrank.encoders.cnn import CNNEncoder, offline_mobilenet_v2_weights
    from mmrank.vision import ImageSearch, index_folder

    bs = min(args.batch_size, 32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, data in enumerate(photo_crops(args.docs, seed=0)):
            (folder / f"p{i:05d}.jpg").write_bytes(data)
        weights = str(offline_mobilenet_v2_weights())
        enc = CNNEncoder("mobilenet_v2", weights, pooling="gem", resize="square", image_size=224, device="cpu")

        def build(out: Path, **kw: Any) -> None:
            index_folder(folder, out, encoder=enc, index="exact", use_cache=False, batch_size=bs, **kw)

        rows = time_rows(build, lambda p: ImageSearch(p, encoder=enc).index, Path(tmp), args.workers)
    head = [
        f"# ray_scale: image folder of {args.docs} JPEG crops (224 px), ImageNet MobileNetV2 GeM, batch {bs}",
        "",
        f"Command: `python benchmarks/ray_scale.py --kind image --docs {args.docs}` on this machine "
        f"({os.cpu_count()} CPU cores, shared; local Ray runtime started once, before the Ray rows; each Ray row "
        "includes starting its actors and loading the model in them).",
    ]
    write_table(rows, args.docs, head, args.out or str(REPO / "benchmarks" / "results" / "ray_scale_image.md"))


if __name__ == "__main__":
    main()
