"""Late-interaction (MaxSim) search on synthetic multi-vectors of ColPali / ColQwen2 shape, side by side in one run:

* exact MaxSim: mmrank ``MultiVectorIndex.scores`` (float16 store, GEMM + reduceat) vs transformers'
  ``ColQwen2Processor.score_retrieval`` (given float32 tensors, its fastest CPU input) vs a naive per-pair loop
  (``(q @ d.T).max(1).sum()`` per query-page pair), queries/s and the largest score difference;
* the approximate path (faiss IVF token candidates + exact MaxSim): recall@10 against exact and speed-up;
* hierarchical token pooling (arXiv 2409.14683): bytes per page and recall@10 of the pooled index against exact.

Synthetic data: each page has ~1,000 (900..1,100) unit 128-d tokens drawn around 40 "concepts" of a global pool of
4,096 (like patches of one page that share content); each query has 20 tokens, noisy copies of tokens of one target
page. Scores are comparable to trained ColPali statistics only in shape, not in value.

    python benchmarks/maxsim.py                    # 10k pages; writes benchmarks/results/maxsim.md (+ .json)
    python benchmarks/maxsim.py --pages 2000       # smaller, for a busy machine

The comparison subset (``--compare-pages``) exists because score_retrieval needs float32 copies of every page
(10k pages would need 5 GB); pooling is measured on ``--pool-pages`` pages (Ward linkage costs ~0.2 s per page).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mmrank.index.maxsim import MultiVectorIndex


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_pages(n: int, dim: int, rng: np.random.Generator, concepts: np.ndarray) -> list[np.ndarray]:
    pages = []
    for _ in range(n):
        m = int(rng.integers(900, 1101))
        own = concepts[rng.choice(len(concepts), size=40, replace=False)]
        toks = own[rng.integers(0, 40, size=m)] + 0.35 * rng.standard_normal((m, dim)).astype(np.float32)
        pages.append(unit(toks).astype(np.float16))
    return pages


def make_queries(
    pages: list[np.ndarray], n: int, q_tokens: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[str]]:
    out, targets = [], []
    for t in rng.choice(len(pages), size=n, replace=False):
        src = pages[t][rng.integers(0, pages[t].shape[0], size=q_tokens)].astype(np.float32)
        out.append(unit(src + 0.25 * rng.standard_normal(src.shape).astype(np.float32)))
        targets.append(f"p{t}")
    return out, targets


def target_at(found: list[list[str]], targets: list[str], k: int) -> float:
    """Share of queries whose source page is in the top k."""
    return float(np.mean([t in f[:k] for f, t in zip(found, targets, strict=True)]))


def recall_at(approx_ids: list[list[str]], exact_ids: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx_ids, exact_ids, strict=True)]))


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--compare-pages", type=int, default=1_000)
    ap.add_argument("--pool-pages", type=int, default=300)
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--naive-queries", type=int, default=4)
    ap.add_argument("--q-tokens", type=int, default=20)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "maxsim.md")
    ap.add_argument("--render", type=Path, help="only re-render the table from this JSON result")
    args = ap.parse_args()
    if args.render:
        args.out.write_text(render(json.loads(args.render.read_text()), args))
        return
    from transformers import ColQwen2Processor

    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]
    concepts = unit(rng.standard_normal((4096, args.dim))).astype(np.float32)
    t0 = time.perf_counter()
    pages = make_pages(args.pages, args.dim, rng, concepts)
    queries, targets = make_queries(pages, args.queries, args.q_tokens, rng)
    gen_s = time.perf_counter() - t0
    ids = [f"p{i}" for i in range(len(pages))]
    rows: dict[str, object] = {"pages": args.pages, "dim": args.dim, "q_tokens": args.q_tokens}

    # --- A. exact MaxSim three ways on the comparison subset ------------------------------------------------
    sub = pages[: args.compare_pages]
    ix_sub = MultiVectorIndex()
    ix_sub.add(sub, ids[: len(sub)])
    ix_sub.matrix(0)  # materialise before timing
    t_mm, s_mm = timed(lambda: ix_sub.scores(queries), repeats=2)
    d32 = [torch.from_numpy(p.astype(np.float32)) for p in sub]
    q32 = [torch.from_numpy(q) for q in queries]
    t_sr, s_sr = timed(lambda: ColQwen2Processor.score_retrieval(None, q32, d32).numpy(), repeats=2)
    nq = args.naive_queries
    sub32 = [p.astype(np.float32) for p in sub]
    t_nv, s_nv = timed(lambda: np.array([[float((q @ d.T).max(1).sum()) for d in sub32] for q in queries[:nq]]))
    rows["exact"] = {
        "pages": len(sub),
        "queries": len(queries),
        "mmrank_qps": len(queries) / t_mm,
        "score_retrieval_qps": len(queries) / t_sr,
        "naive_qps": nq / t_nv,
        "speedup_vs_score_retrieval": t_sr / t_mm,
        "max_abs_diff_vs_score_retrieval": float(np.abs(s_mm - s_sr).max()),
        "max_abs_diff_vs_naive": float(np.abs(s_mm[:nq] - s_nv).max()),
    }

    # --- B. full collection: exact vs approximate -----------------------------------------------------------
    ix = MultiVectorIndex()
    ix.add(pages, ids)
    t_ex, (_, ex_i) = timed(lambda: ix.search(queries, 10))
    t_build, _ = timed(lambda: ix.build_ann(f"IVF{args.nlist},SQ8", train_size=64 * args.nlist))
    ann_rows = []
    for token_k, nprobe in ((32, 8), (64, 16), (128, 32)):
        t_ap, (_, ap_i) = timed(
            lambda tk=token_k, npb=nprobe: ix.search(queries, 10, approximate=True, token_k=tk, nprobe=npb)
        )
        n_cand = [len(c) for c in ix.candidates(queries, token_k=token_k, nprobe=nprobe)]
        ann_rows.append(
            {
                "token_k": token_k,
                "nprobe": nprobe,
                "qps": len(queries) / t_ap,
                "speedup_vs_exact": t_ex / t_ap,
                "recall@10_vs_exact": recall_at(ap_i, ex_i, 10),
                "target@1": target_at(ap_i, targets, 1),
                "mean_candidates": float(np.mean(n_cand)),
            }
        )
    rows["full"] = {
        "pages": len(pages),
        "tokens": ix.n_tokens,
        "exact_qps": len(queries) / t_ex,
        "exact_target@1": target_at(ex_i, targets, 1),
        "ann_build_s": t_build,
        "ann": ann_rows,
        "bytes_per_page": ix.nbytes_per_item(),
    }
    ix._ann, ix.tokens = None, np.zeros((0, args.dim), np.float16)  # free memory before pooling

    # --- C. token pooling ---------------------------------------------------------------------------------
    pp = pages[: args.pool_pages]
    pq, ptargets = make_queries(pp, min(args.queries, len(pp)), args.q_tokens, rng)
    base = MultiVectorIndex()
    base.add(pp, ids[: len(pp)])
    _, base_i = base.search(pq, 10)
    pool_rows = [
        {
            "pool_factor": 1,
            "bytes_per_page": base.nbytes_per_item(),
            "recall@10_vs_unpooled": 1.0,
            "target@1": target_at(base_i, ptargets, 1),
        }
    ]
    for f in (2, 3):
        t_pool, pooled = timed(lambda f=f: _pooled(pp, ids[: len(pp)], f))
        _, pi = pooled.search(pq, 10)
        pool_rows.append(
            {
                "pool_factor": f,
                "bytes_per_page": pooled.nbytes_per_item(),
                "recall@10_vs_unpooled": recall_at(pi, base_i, 10),
                "target@1": target_at(pi, ptargets, 1),
                "pool_seconds_per_page": t_pool / len(pp),
            }
        )
    rows["pooling"] = {"pages": len(pp), "rows": pool_rows}
    rows["meta"] = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "generate_s": gen_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    args.out.write_text(render(rows, args))
    print(args.out.read_text())


def _pooled(pages: list[np.ndarray], ids: list[str], factor: int) -> MultiVectorIndex:
    ix = MultiVectorIndex(pool_factor=factor)
    ix.add(pages, ids)
    return ix


def render(r: dict, args: argparse.Namespace) -> str:
    ex, full, pool, meta = r["exact"], r["full"], r["pooling"], r["meta"]
    lines = [
        "# MaxSim search on synthetic ColPali-shaped multi-vectors",
        "",
        f"Command: `python benchmarks/maxsim.py --pages {args.pages} --compare-pages {args.compare_pages} "
        f"--pool-pages {args.pool_pages} --queries {args.queries} --nlist {args.nlist}`",
        "",
        f"Pages of 900-1,100 x {r['dim']} tokens (float16), queries of {r['q_tokens']} x {r['dim']}. "
        f"Machine: {meta['machine']}, torch threads {meta['torch_threads']}, load average {meta['load_before']:.1f} "
        f"before / {meta['load_after']:.1f} after (a shared 2-core machine: compare rows of one run only).",
        "",
        f"## Exact MaxSim, {ex['pages']} pages, {ex['queries']} queries",
        "",
        "| method | queries/s | / mmrank |",
        "|---|---|---|",
        f"| mmrank `MultiVectorIndex.scores` (fp16 store) | {ex['mmrank_qps']:.2f} | 1.00 |",
        f"| transformers `score_retrieval` (fp32 tensors) | {ex['score_retrieval_qps']:.2f} | "
        f"{ex['score_retrieval_qps'] / ex['mmrank_qps']:.2f} |",
        f"| naive per-pair loop ({args.naive_queries} queries) | {ex['naive_qps']:.2f} | "
        f"{ex['naive_qps'] / ex['mmrank_qps']:.2f} |",
        "",
        f"mmrank is {ex['speedup_vs_score_retrieval']:.2f}x `score_retrieval`; largest score difference "
        f"{ex['max_abs_diff_vs_score_retrieval']:.2e} (vs score_retrieval), "
        f"{ex['max_abs_diff_vs_naive']:.2e} (vs naive).",
        "",
        f"## Exact vs approximate, {full['pages']} pages ({full['tokens']:,} tokens, "
        f"{full['bytes_per_page'] / 1024:.0f} KiB per page)",
        "",
        f"Exact: {full['exact_qps']:.2f} queries/s, source page ranked first for {full['exact_target@1']:.0%} "
        f"of the queries. faiss `IVF{args.nlist},SQ8` token index built in "
        f"{full['ann_build_s']:.0f} s.",
        "",
        "| token_k | nprobe | queries/s | speed-up vs exact | recall@10 vs exact | source page @1 | mean candidates |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in full["ann"]:
        lines.append(
            f"| {a['token_k']} | {a['nprobe']} | {a['qps']:.2f} | {a['speedup_vs_exact']:.1f}x | "
            f"{a['recall@10_vs_exact']:.3f} | {a['target@1']:.2f} | {a['mean_candidates']:.0f} |"
        )
    lines += [
        "",
        f"## Hierarchical token pooling, {pool['pages']} pages",
        "",
        "Queries made from pages of this subset. recall@10 compares the pooled top 10 with the unpooled top 10 (below",
        "rank 1 the synthetic scores are near ties, so this overlap is a harsh measure); source page @1 is the share",
        "of queries whose source page is ranked first.",
        "",
        "| pool_factor | bytes per page | recall@10 vs unpooled exact | source page @1 | pooling s/page |",
        "|---|---|---|---|---|",
    ]
    for p in pool["rows"]:
        lines.append(
            f"| {p['pool_factor']} | {p['bytes_per_page']:,.0f} | {p['recall@10_vs_unpooled']:.3f} | "
            f"{p['target@1']:.2f} | "
            f"{p.get('pool_seconds_per_page', 0):.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
