"""Composed image retrieval on your own images or on a CIR benchmark, with a contact sheet of the results.

    # your folder of images + a JSONL of queries {"id", "reference", "text", optional "target"}
    python vision/cir.py --images photos/ --queries queries.jsonl --model ViT-B-32 --pretrained openai --out cir-out
    # SQAF first stage and EBR reranking with a local VLM
    python vision/cir.py --images photos/ --queries queries.jsonl --method sqaf --vlm /models/Qwen2-VL-2B-Instruct \
        --rerank ebr --out cir-out
    # a benchmark split (first --limit queries), ground truth marked on the sheet
    python vision/cir.py --dataset cirr --images /data/cirr --split val --limit 12 --out cir-out
    # offline demo: the synthetic CIR set from scikit-image photos with tiny *random* models (plumbing only)
    python vision/cir.py --demo --method sqaf --rerank ebr --out cir-demo

Writes ``OUT/sheet.png`` (one row per query: reference, modification text and VLM caption, top results, targets in
green), ``OUT/results.jsonl`` (top ids, scores, fallbacks, caption per query) and prints Recall@1/5/10 when the
targets are known. Without CLIP / VLM weights (as offline here) use --demo: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _models(args: argparse.Namespace, workdir: Path) -> tuple[Any, Any]:
    """(CLIP encoder, VLM or None)."""
    from mmrank import registry

    needs_vlm = args.method in ("cir-caption", "sqaf") or args.rerank != "none"
    if args.demo:
        sys.path.insert(0, str(ROOT))
        import torch

        from mmrank.encoders.clip import OpenCLIPEncoder
        from mmrank.llm.vlm import VLM
        from tests.tiny_vision import register_tiny_open_clip
        from tests.tiny_vlm import save_tiny_qwen2_vl

        torch.manual_seed(0)
        clip = OpenCLIPEncoder(register_tiny_open_clip(workdir / "tiny-clip"), device=args.device or "cpu")
        vlm = VLM(str(save_tiny_qwen2_vl(workdir / "tiny-vlm")), device=args.device or "cpu") if needs_vlm else None
        return clip, vlm
    kw: dict[str, Any] = {"model": args.model}
    if args.pretrained:
        kw["pretrained"] = args.pretrained
    if args.device:
        kw["device"] = args.device
    clip = registry.encoder(args.encoder, **kw)
    vlm = None
    if needs_vlm:
        if not args.vlm:
            raise SystemExit(f"--method {args.method} / --rerank {args.rerank} needs --vlm")
        from mmrank.llm.vlm import get_vlm

        vlm = get_vlm(args.vlm, **({"device": args.device} if args.device else {}))
    return clip, vlm


def _data(args: argparse.Namespace, workdir: Path) -> tuple[Any, list]:
    """(gallery corpus, queries with meta["targets"] when known)."""
    from dataclasses import replace

    if args.demo:
        from mmrank.cir.synthetic import synthetic_cir

        corpus, queries, _ = synthetic_cir(workdir / "synthetic", size=160)
        return corpus, queries[:: max(1, len(queries) // args.limit)][: args.limit]
    if args.dataset:
        from mmrank.eval.cir import load_benchmark

        bench = load_benchmark(args.dataset, args.annotations or args.images, args.images, args.split)[0]
        samples = bench.samples[: args.limit]
        queries = [
            replace(q, meta={**q.meta, "targets": list(s.targets)})
            for s, q in zip(samples, map(bench.query, samples), strict=True)
        ]
        missing = bench.missing_images()
        if missing:
            raise SystemExit(f"{len(missing)} images missing under {args.images}, e.g. {next(iter(missing.values()))}")
        return bench.corpus(), queries
    from mmrank.cir.folder import folder_gallery, load_cir_queries

    if not args.queries:
        raise SystemExit("give --queries with --images (or --dataset, or --demo)")
    corpus, warnings = folder_gallery(args.images)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return corpus, load_cir_queries(args.queries, args.images)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", help="gallery folder (with --queries) or the benchmark's image root (--dataset)")
    ap.add_argument("--queries", help="JSONL of composed queries (folder mode)")
    ap.add_argument("--dataset", choices=("cirr", "circo", "fashioniq"))
    ap.add_argument("--annotations")
    ap.add_argument("--split", default="val")
    ap.add_argument("--demo", action="store_true", help="synthetic photos + tiny random models (offline)")
    ap.add_argument("--limit", type=int, default=8, help="benchmark / demo: number of queries")
    ap.add_argument("--method", default="cir-sum", choices=("cir-image", "cir-text", "cir-sum", "cir-caption", "sqaf"))
    ap.add_argument("--encoder", default="open-clip")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained")
    ap.add_argument("--alpha", type=float, default=0.65)
    ap.add_argument("--beta", type=float, default=0.65)
    ap.add_argument("--vlm")
    ap.add_argument("--rerank", default="none", choices=("none", "ebr", "cir-pointwise"))
    ap.add_argument("--rerank-k", type=int, default=9)
    ap.add_argument("-k", type=int, default=6, help="results per query on the sheet")
    ap.add_argument("--device")
    ap.add_argument("--out", default="cir-out")
    args = ap.parse_args(argv)
    if not (args.demo or args.images):
        ap.error("give --images (with --queries or --dataset) or --demo")

    from mmrank import registry
    from mmrank.cir.folder import cir_search, target_recall
    from mmrank.cir.sheet import cir_sheet

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip, vlm = _models(args, out / "_work")
    corpus, queries = _data(args, out / "_work")
    retriever = registry.retriever(args.method, encoder=clip, alpha=args.alpha, beta=args.beta, vlm=vlm)
    reranker = None
    if args.rerank == "ebr":
        reranker = registry.reranker("ebr", lm=vlm, k=args.rerank_k, save_grids=out / "grids")
    elif args.rerank == "cir-pointwise":
        reranker = registry.reranker("cir-pointwise", lm=vlm)
    run = cir_search(corpus, queries, retriever, reranker=reranker, k=max(args.k, 10))
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for q in queries:
            r = run[q.id]
            caption = r.query.meta.get("target_caption") if r.query is not None else None
            rec = {"id": q.id, "hits": [[h.id, round(h.score, 5)] for h in r.hits], "fallbacks": r.fallbacks}
            f.write(json.dumps({**rec, "caption": caption}, ensure_ascii=False) + "\n")
    sheet = cir_sheet([(q, run[q.id]) for q in queries], out / "sheet.png", k=args.k)
    summary = {"sheet": str(sheet), "results": str(out / "results.jsonl"), **run.provenance()}
    if any(q.meta.get("targets") for q in queries):
        summary["recall"] = target_recall(run, queries)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
