"""Exact top-100 search on 100k x {384, 512} float32 vectors with 1000 queries:
mmrank ExactIndex vs raw torch matmul+topk vs faiss IndexFlatIP, side by side in one run.

    .venv/bin/python benchmarks/exact_search.py            # writes benchmarks/results/exact_search.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from mmrank.bench.exact_search import run_exact_search_bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "exact_search.md")
    args = ap.parse_args()
    rows = run_exact_search_bench(n=args.n, dims=[384, 512], n_queries=args.queries, k=100, repeats=args.repeats)
    lines = [
        f"# Exact top-100 search (best of {args.repeats} runs, seconds for all queries)",
        "",
        f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}, load average before the run {os.getloadavg()[0]:.2f} "
        "(the machine is shared: compare rows of one run only)",
        "",
        "| n | dim | queries | method | seconds | / fastest |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['dim']} | {r['queries']} | {r['method']} | {r['seconds']:.3f} | {r['vs_fastest']:.3f} |"
        )
    checks = [r for r in rows if "top1_agree_torch" in r]
    lines += [
        "",
        "Agreement (mmrank vs peers): "
        + "; ".join(
            f"dim {r['dim']}: top-1 = torch {r['top1_agree_torch']:.3f}, = faiss {r['top1_agree_faiss']:.3f}, "
            f"max |score diff| vs faiss {r['max_score_diff_faiss']:.2e}"
            for r in checks
        ),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
