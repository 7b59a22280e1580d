"""Benchmark global image descriptors on a labelled folder with mmrank's public API only.

    python vision/bench_folder.py --images ../shared/data/flowers6 --labels ../shared/data/flowers6/labels.csv \
        [--backbone mobilenet_v2] [--configs avg "gem (p=3)" "superglobal +rerank"] [--json]

Prints one row (or, with --json, one JSON object) per configuration: leave-one-out mAP and P@10; the same as
``mmrank bench image-retrieval``.
"""

from __future__ import annotations

import argparse
import json
import sys

from mmrank.vision import DEFAULT_CONFIGS, bench_labelled_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True, help="CSV with columns path,label")
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--configs", nargs="+", choices=list(DEFAULT_CONFIGS))
    ap.add_argument("--device")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    table, warnings = bench_labelled_folder(
        args.images,
        args.labels,
        backbone=args.backbone,
        weights=None if args.weights == "none" else args.weights,
        configs=args.configs,
        device=args.device,
    )
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(table))
        return
    for name, row in table.items():
        print(f"{name:<28} mAP {row['mAP']:.4f}  P@10 {row['P@10']:.4f}")


if __name__ == "__main__":
    main()
