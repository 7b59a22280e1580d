"""Late-interaction (MaxSim) search on synthetic multi-vectors of ColPali / ColQwen2 shape, side by side in one run:

* exact MaxSim: mmrank ``MultiVectorIndex.scores`` (float16 store, GEMM + reduceat) vs transformers'
  ``ColQwen2Processor.score_retrieval`` (given float32 tensors, its fastest CPU input) vs a naive per-pair loop
  (``(q @ d.T).max(1).sum()`` per query-page pair), queries/s and the largest score difference;
* the approximate path (faiss IVF token candidates -> top ``max_candidates`` pages by approximate score -> exact
  MaxSim) at several ``token_k:nprobe:max_candidates`` settings: recall@10 against exact and speed-up;
* hierarchical token pooling (arXiv 2409.14683): bytes per page and recall@10 of the pooled index against exact.

Synthetic data (``Generator``; its full description is written into the results file): tokens are clustered as
ColPali patch embeddings are -- per-page content centroids around a topic shared by ~20 pages, plus layout
centroids shared by all pages -- and unit-normalised; a query is 20 noisy copies of tokens of one target page.
Scores are comparable to trained ColPali statistics only in shape, not in value.

    python benchmarks/maxsim.py --workdir /work/tmp/maxsim-bench   # 10k pages (2.6 GB token file, deleted after)
    python benchmarks/maxsim.py --pages 2000                       # smaller, for a busy machine

``--compare-pages`` / ``--naive-pages`` run score_retrieval / the naive loop on the first N pages only (their
queries/s is then extrapolated linearly and the table says so); score_retrieval needs float32 copies of those
pages in RAM (5 GB at 10k pages). Pooling is measured on ``--pool-pages`` pages (Ward linkage, ~0.15 s per page).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmrank.index import store
from mmrank.index.maxsim import MultiVectorIndex, _topk, default_candidates


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def noise(rng: np.random.Generator, shape: tuple[int, ...], size: float) -> np.ndarray:
    """Gaussian noise of expected norm ~``size`` (per-coordinate std ``size / sqrt(dim)``)."""
    return np.float32(size / np.sqrt(shape[-1])) * rng.standard_normal(shape, dtype=np.float32)


class Generator:
    """Clustered synthetic page / query token matrices (see GENERATOR, written into the results file)."""

    def __init__(self, args: argparse.Namespace, rng: np.random.Generator) -> None:
        self.a, self.rng, d = args, rng, args.dim
        self.shared = unit(rng.standard_normal((args.shared, d), dtype=np.float32))
        n_topics = max(1, args.pages // args.pages_per_topic)
        self.topics = unit(rng.standard_normal((n_topics, d), dtype=np.float32))
        self.page_topic = rng.integers(0, n_topics, size=args.pages)
        self.targets = rng.choice(args.pages, size=args.queries, replace=False)
        self.target_set = set(self.targets.tolist())
        self.kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # target page -> (tokens, content mask)

    def pages(self, start: int, stop: int) -> list[np.ndarray]:
        a, rng, d = self.a, self.rng, self.a.dim
        out = []
        for p in range(start, stop):
            m = int(rng.integers(900, 1101))
            content = unit(self.topics[self.page_topic[p]] + noise(rng, (a.content_centroids, d), a.topic_spread))
            layout = self.shared[rng.choice(a.shared, size=a.layout_centroids, replace=False)]
            is_content = rng.random(m) < a.content_share
            centres = np.where(
                is_content[:, None],
                content[rng.integers(0, a.content_centroids, size=m)],
                layout[rng.integers(0, a.layout_centroids, size=m)],
            )
            spread = np.where(is_content, a.content_noise, a.layout_noise).astype(np.float32)[:, None]
            toks = unit(centres + spread * noise(rng, (m, d), 1.0)).astype(np.float16)
            if p in self.target_set:
                self.kept[p] = (toks, is_content)
            out.append(toks)
        return out

    def queries(self) -> tuple[list[np.ndarray], list[str]]:
        a, rng = self.a, self.rng
        out, names = [], []
        for t in self.targets:
            toks, is_content = self.kept[int(t)]
            n_c = round(a.q_tokens * a.q_content_share)
            pick = np.r_[
                rng.choice(np.flatnonzero(is_content), size=n_c, replace=False),
                rng.choice(np.flatnonzero(~is_content), size=a.q_tokens - n_c, replace=False),
            ]
            src = toks[pick].astype(np.float32)
            out.append(unit(src + noise(rng, src.shape, a.query_noise)).astype(np.float32))
            names.append(f"p{t}")
        return out, names


def generator_text(a: argparse.Namespace) -> str:
    return (
        f"{a.pages:,} pages of 900-1,100 unit {a.dim}-d tokens (uniform length) and {a.queries} queries of "
        f"{a.q_tokens} tokens. Pages belong to {max(1, a.pages // a.pages_per_topic):,} topics (about "
        f"{a.pages_per_topic} pages each; topic vectors random unit). Each page has {a.content_centroids} content "
        f"centroids `unit(topic + n({a.topic_spread}))` and uses {a.layout_centroids} of {a.shared} layout centroids "
        f"shared by all pages (background, rules, white space; random unit vectors). A token is content with "
        f"probability {a.content_share}: `unit(content centroid + n({a.content_noise}))`, else "
        f"`unit(layout centroid + n({a.layout_noise}))`; stored as float16. `n(s)` is Gaussian noise of norm about "
        f"s (per coordinate std s/sqrt({a.dim})). A query is built from one target page: "
        f"{round(a.q_tokens * a.q_content_share)} of its content tokens and "
        f"{a.q_tokens - round(a.q_tokens * a.q_content_share)} of its layout tokens, each "
        f"`unit(token + n({a.query_noise}))`. The exact top 10 below the target are mostly pages of the same topic."
    )


def target_at(found: list[list[str]], targets: list[str], k: int) -> float:
    """Share of queries whose source page is in the top k."""
    return float(np.mean([t in f[:k] for f, t in zip(found, targets, strict=True)]))


def recall_at(approx_ids: list[list[str]], exact_ids: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx_ids, exact_ids, strict=True)]))


CPU: dict[str, float] = {}  # label -> process CPU seconds of the best (wall) repeat


def timed(fn, repeats: int = 1, label: str = ""):
    """Best wall time of ``repeats`` calls; the process CPU time of that call goes to ``CPU[label]``.

    CPU time (all threads of this process) is far less sensitive than wall time to the other jobs of a shared
    machine, so speed-ups are reported both ways."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        if wall < best:
            best, CPU[label] = wall, cpu
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--compare-pages", type=int, help="pages given to score_retrieval (default: all)")
    ap.add_argument("--naive-pages", type=int, help="pages scored by the naive loop (default: all)")
    ap.add_argument("--naive-queries", type=int, default=4)
    ap.add_argument("--pool-pages", type=int, default=200)
    ap.add_argument("--q-tokens", type=int, default=20)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2, help="best of N for mmrank, score_retrieval and each ANN row")
    ap.add_argument(
        "--ann", default="16:4:64,32:8:128,64:16:256,128:32:512", help="token_k:nprobe:max_candidates settings"
    )
    # generator (see generator_text)
    ap.add_argument("--shared", type=int, default=256)
    ap.add_argument("--layout-centroids", type=int, default=32)
    ap.add_argument("--pages-per-topic", type=int, default=20)
    ap.add_argument("--content-centroids", type=int, default=24)
    ap.add_argument("--topic-spread", type=float, default=1.0)
    ap.add_argument("--content-share", type=float, default=0.5)
    ap.add_argument("--content-noise", type=float, default=0.5)
    ap.add_argument("--layout-noise", type=float, default=0.3)
    ap.add_argument("--q-content-share", type=float, default=0.8)
    ap.add_argument("--query-noise", type=float, default=0.5)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mmrank-maxsim-bench")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "maxsim.md")
    ap.add_argument("--render", type=Path, help="only re-render the table from this JSON result")
    args = ap.parse_args()
    if args.render:
        args.out.write_text(render(json.loads(args.render.read_text())))
        return
    if args.workdir.exists():
        raise SystemExit(f"{args.workdir} exists; remove it or pass another --workdir")
    try:
        rows = run(args)
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    args.out.write_text(render(rows))
    print(args.out.read_text())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    from transformers import ColQwen2Processor

    rng = np.random.default_rng(0)
    rows: dict = {"command": "python benchmarks/maxsim.py " + " ".join(sys.argv[1:]), "generator": generator_text(args)}
    load_before = os.getloadavg()[0]
    n = args.pages
    ids = [f"p{i}" for i in range(n)]

    # --- the collection: generated in blocks, saved, reopened memory-mapped ---------------------------------
    t0 = time.perf_counter()
    gen = Generator(args, rng)
    built = MultiVectorIndex(model_id="synthetic")
    for s in range(0, n, 500):
        built.add(gen.pages(s, min(n, s + 500)), ids[s : min(n, s + 500)])
    queries, targets = gen.queries()
    built.save(args.workdir / "ix")
    del built
    ix = MultiVectorIndex.load(args.workdir / "ix")
    token_file = args.workdir / "ix" / store.read_manifest(args.workdir / "ix")["files"]["tokens"]
    rows["collection"] = {
        "pages": n,
        "tokens": ix.n_tokens,
        "dim": args.dim,
        "queries": len(queries),
        "q_tokens": args.q_tokens,
        "bytes_on_disk": token_file.stat().st_size,
        "bytes_per_page": ix.nbytes_per_item(),
        "generate_and_save_s": time.perf_counter() - t0,
        "memory_mapped": isinstance(ix.tokens, np.memmap),
    }
    log(f"collection: {ix.n_tokens:,} tokens, {token_file.stat().st_size / 2**30:.2f} GiB")
    for a in range(0, ix.n_tokens, 1 << 20):  # warm the page cache: every method below reads warm data
        float(np.asarray(ix.tokens[a : a + (1 << 20), 0], dtype=np.float32).sum())

    # --- A. exact MaxSim three ways ------------------------------------------------------------------------
    t_mm, s_mm = timed(lambda: ix.scores(queries), args.repeats, "mmrank")
    exact_ids = [[ids[j] for j in _topk(row, 10)] for row in s_mm]
    log(f"mmrank exact: {len(queries) / t_mm:.2f} q/s")
    n_cmp = min(n, args.compare_pages or n)
    d32 = [torch.from_numpy(ix.matrix(i).astype(np.float32)) for i in range(n_cmp)]
    q32 = [torch.from_numpy(q) for q in queries]
    t_sr, s_sr = timed(
        lambda: ColQwen2Processor.score_retrieval(None, q32, d32).numpy(), args.repeats, "score_retrieval"
    )
    log(f"score_retrieval: {len(queries) / t_sr:.2f} q/s on {n_cmp} pages")
    n_nv, nq = min(n_cmp, args.naive_pages or n), args.naive_queries
    t_nv, s_nv = timed(
        lambda: np.array([[float((q @ d.numpy().T).max(1).sum()) for d in d32[:n_nv]] for q in queries[:nq]]),
        label="naive",
    )
    log(f"naive: {nq / t_nv:.3f} q/s on {n_nv} pages")
    d32.clear()  # free the float32 copies
    rows["exact"] = {
        "mmrank_qps": len(queries) / t_mm,
        "mmrank_cpu_s_per_query": CPU["mmrank"] / len(queries),
        "score_retrieval_cpu_s_per_query": CPU["score_retrieval"] / len(queries),
        "naive_cpu_s_per_query": CPU["naive"] / nq,
        "score_retrieval_pages": n_cmp,
        "score_retrieval_qps_measured": len(queries) / t_sr,
        "score_retrieval_qps_at_full": len(queries) / t_sr * n_cmp / n,
        "naive_pages": n_nv,
        "naive_queries": nq,
        "naive_qps_measured": nq / t_nv,
        "naive_qps_at_full": nq / t_nv * n_nv / n,
        "max_abs_diff_vs_score_retrieval": float(np.abs(s_mm[:, :n_cmp] - s_sr).max()),
        "max_abs_diff_vs_naive": float(np.abs(s_mm[:nq, :n_nv] - s_nv).max()),
        "target@1": target_at(exact_ids, targets, 1),
    }

    # --- B. approximate: faiss token candidates -> capped -> exact ------------------------------------------
    t_build, _ = timed(lambda: ix.build_ann(f"IVF{args.nlist},SQ8", train_size=64 * args.nlist))
    log(f"faiss IVF{args.nlist},SQ8 built in {t_build:.0f} s")
    ann_rows = []
    for spec in args.ann.split(","):
        token_k, nprobe, cap = (int(x) for x in spec.split(":"))
        t_ap, (_, ap_i) = timed(
            lambda tk=token_k, npb=nprobe, c=cap: ix.search(
                queries, 10, approximate=True, token_k=tk, nprobe=npb, max_candidates=c
            ),
            args.repeats,
            "ann",
        )
        t_cand, _ = timed(
            lambda tk=token_k, npb=nprobe, c=cap: ix.candidates(queries, token_k=tk, nprobe=npb, max_candidates=c)
        )
        reached = [len(c) for c in ix.candidates(queries, token_k=token_k, nprobe=nprobe)]
        ann_rows.append(
            {
                "token_k": token_k,
                "nprobe": nprobe,
                "max_candidates": cap,
                "qps": len(queries) / t_ap,
                "candidates_ms_per_query": 1000 * t_cand / len(queries),
                "speedup_vs_exact": t_mm / t_ap,
                "cpu_speedup_vs_exact": CPU["mmrank"] / CPU["ann"],
                "recall@10_vs_exact": recall_at(ap_i, exact_ids, 10),
                "target@1": target_at(ap_i, targets, 1),
                "mean_reached": float(np.mean(reached)),
                "scored": float(np.mean([min(r, cap) for r in reached])),
            }
        )
        log(f"ann {spec}: {ann_rows[-1]}")
    rows["ann"] = {"factory": f"IVF{args.nlist},SQ8", "build_s": t_build, "rows": ann_rows}
    ix._ann = None

    # --- C. token pooling on a subset that holds every target page ------------------------------------------
    sub = sorted(set(gen.targets.tolist()) | set(range(max(0, args.pool_pages - len(queries)))))
    mats = [ix.matrix(i) for i in sub]
    base = MultiVectorIndex()
    base.add(mats, [ids[i] for i in sub])
    _, base_i = base.search(queries, 10)
    pool_rows = [
        {
            "pool_factor": 1,
            "bytes_per_page": base.nbytes_per_item(),
            "recall@10_vs_unpooled": 1.0,
            "target@1": target_at(base_i, targets, 1),
            "pool_seconds_per_page": 0.0,
        }
    ]
    for f in (2, 3, 4):
        t_pool, pooled = timed(lambda f=f: _pooled(mats, [ids[i] for i in sub], f))
        _, pi = pooled.search(queries, 10)
        pool_rows.append(
            {
                "pool_factor": f,
                "bytes_per_page": pooled.nbytes_per_item(),
                "recall@10_vs_unpooled": recall_at(pi, base_i, 10),
                "target@1": target_at(pi, targets, 1),
                "pool_seconds_per_page": t_pool / len(sub),
            }
        )
        log(f"pool {f}: {pool_rows[-1]}")
    rows["pooling"] = {"pages": len(sub), "rows": pool_rows}
    rows["meta"] = {
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "torch_threads": torch.get_num_threads(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    return rows


def _pooled(pages: list[np.ndarray], ids: list[str], factor: int) -> MultiVectorIndex:
    ix = MultiVectorIndex(pool_factor=factor)
    ix.add(pages, ids)
    return ix


def _cpu(ex: dict, name: str) -> str:
    v = ex.get(f"{name}_cpu_s_per_query")
    return "n/a" if v is None else f"{v:.2f}"


def _cpu_ratio(ex: dict, name: str, share: float) -> str:
    """mmrank's CPU-time advantage, the other method's CPU time scaled to all pages (``share`` = pages it scored)."""
    v, m = ex.get(f"{name}_cpu_s_per_query"), ex.get("mmrank_cpu_s_per_query")
    return "n/a" if v is None or m is None else f"{v / share / m:.2f}x"


def render(r: dict) -> str:
    c, ex, ann, pool, meta = r["collection"], r["exact"], r["ann"], r["pooling"], r["meta"]
    n = c["pages"]
    full_sr = ex["score_retrieval_pages"] == n
    full_nv = ex["naive_pages"] == n
    lines = [
        "# MaxSim search on synthetic ColPali-shaped multi-vectors",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Machine: {meta['machine']}, torch threads {meta['torch_threads']}, load average "
        f"{meta['load_before']:.1f} before / {meta['load_after']:.1f} after (shared machine: compare rows of one "
        f"run only). Timings are the best of {meta.get('repeats', 1)} runs (mmrank, score_retrieval, each ANN row) "
        "or of 1 (naive loop, index build).",
        "",
        "## Data",
        "",
        r["generator"],
        "",
        f"Collection: {n:,} pages, {c['tokens']:,} tokens, token file {c['bytes_on_disk'] / 2**30:.2f} GiB "
        f"(float16, memory-mapped: {c['memory_mapped']}), {c['bytes_per_page']:,.0f} bytes per page; generated "
        f"and saved in {c['generate_and_save_s']:.0f} s. The page cache was warmed before timing.",
        "",
        f"## Exact MaxSim, {c['queries']} queries x {n:,} pages",
        "",
        f"| method | pages scored | queries/s measured | queries/s at {n:,} pages | mmrank speed-up (wall) | "
        "CPU s/query | mmrank speed-up (CPU time) |",
        "|---|---|---|---|---|---|---|",
        f"| mmrank `MultiVectorIndex.scores` (float16 memory-mapped store) | {n:,} | {ex['mmrank_qps']:.3f} | "
        f"{ex['mmrank_qps']:.3f} | 1.0x | {_cpu(ex, 'mmrank')} | 1.0x |",
        f"| transformers `ColQwen2Processor.score_retrieval` (float32 tensors in RAM) | "
        f"{ex['score_retrieval_pages']:,} | {ex['score_retrieval_qps_measured']:.3f} | "
        f"{ex['score_retrieval_qps_at_full']:.3f}{'' if full_sr else ' (extrapolated)'} | "
        f"{ex['mmrank_qps'] / ex['score_retrieval_qps_at_full']:.2f}x | {_cpu(ex, 'score_retrieval')} | "
        f"{_cpu_ratio(ex, 'score_retrieval', ex['score_retrieval_pages'] / n)} |",
        f"| naive per-pair loop `(q @ d.T).max(1).sum()` ({ex['naive_queries']} queries) | {ex['naive_pages']:,} | "
        f"{ex['naive_qps_measured']:.3f} | {ex['naive_qps_at_full']:.3f}{'' if full_nv else ' (extrapolated)'} | "
        f"{ex['mmrank_qps'] / ex['naive_qps_at_full']:.1f}x | {_cpu(ex, 'naive')} | "
        f"{_cpu_ratio(ex, 'naive', ex['naive_pages'] / n)} |",
        "",
        f"Largest score difference: {ex['max_abs_diff_vs_score_retrieval']:.2e} vs score_retrieval, "
        f"{ex['max_abs_diff_vs_naive']:.2e} vs naive. Exact search ranks the target page first for "
        f"{ex['target@1']:.0%} of the queries.",
    ]
    if not (full_sr and full_nv):
        lines += [
            "",
            "Extrapolated rows: the method ran on the first N pages only and its queries/s is scaled by N / "
            f"{n:,} (cost is linear in pages).",
        ]
    lines += [
        "",
        f"## Approximate: faiss `{ann['factory']}` token candidates -> top `max_candidates` pages by approximate "
        "score -> exact MaxSim",
        "",
        f"Token index built in {ann['build_s']:.0f} s (training sample 64 x nlist tokens). recall@10 is the overlap "
        "of the approximate top 10 with the exact top 10; speed-up is against the exact mmrank row above (same "
        "queries, same run). `pages reached` counts pages owning a retrieved token; `pages scored` is what the "
        "exact stage scored after the cap; `candidates ms/q` is the faiss search plus approximate scoring and "
        "capping alone (timed separately).",
        "",
        "| token_k | nprobe | max_candidates | queries/s | speed-up vs exact (wall) | speed-up (CPU time) | "
        "recall@10 vs exact | target @1 | pages reached | pages scored | candidates ms/q |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in ann["rows"]:
        lines.append(
            f"| {a['token_k']} | {a['nprobe']} | {a['max_candidates']} | {a['qps']:.2f} | "
            f"{a['speedup_vs_exact']:.1f}x | {a.get('cpu_speedup_vs_exact', float('nan')):.1f}x | "
            f"{a['recall@10_vs_exact']:.3f} | {a['target@1']:.2f} | "
            f"{a['mean_reached']:,.0f} | {a['scored']:,.0f} | {a.get('candidates_ms_per_query', float('nan')):.0f} |"
        )
    sig = inspect.signature(MultiVectorIndex.search).parameters
    lines += [
        "",
        f"Defaults of `MultiVectorIndex.search(approximate=True)` at k=10: token_k {sig['token_k'].default}, nprobe "
        f"{sig['nprobe'].default}, max_candidates {default_candidates(10)} (`default_candidates(k)`); the faiss "
        f"index here is `IVF{ann['factory'].split(',')[0][3:]}` (the default nlist is 4 sqrt(tokens) rounded to a "
        "power of two, at most a 39th of the training sample).",
    ]
    lines += [
        "",
        f"## Hierarchical token pooling, {pool['pages']} pages (every target page included)",
        "",
        "recall@10 compares the pooled top 10 with the unpooled top 10 on this subset; target @1 is the share of "
        "queries whose target page is ranked first.",
        "",
        "| pool_factor | bytes per page | recall@10 vs unpooled exact | target @1 | pooling s/page |",
        "|---|---|---|---|---|",
    ]
    for p in pool["rows"]:
        lines.append(
            f"| {p['pool_factor']} | {p['bytes_per_page']:,.0f} | {p['recall@10_vs_unpooled']:.3f} | "
            f"{p['target@1']:.2f} | {p['pool_seconds_per_page']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
