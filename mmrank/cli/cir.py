"""``mmrank bench cir``: a composed-retrieval method on CIRR, CIRCO or FashionIQ with per-query checkpoints.

The main CLI calls :func:`add_bench_parsers` on its ``bench`` subparsers. Val splits print the official metrics;
test splits write the evaluation server's submission files into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

METHODS = ("cir-image", "cir-text", "cir-sum", "cir-caption", "sqaf")
RERANKERS = ("none", "ebr", "cir-pointwise")


def _encoder(args: argparse.Namespace) -> Any:
    from mmrank import registry

    kw: dict[str, Any] = {"model": args.model}
    if args.pretrained:
        kw["pretrained"] = args.pretrained
    if args.device:
        kw["device"] = args.device
    return registry.encoder(args.encoder, **kw)


def _vlm(args: argparse.Namespace) -> Any:
    from mmrank.llm.vlm import get_vlm

    kw: dict[str, Any] = {}
    if args.device:
        kw["device"] = args.device
    if args.max_pixels:
        kw["max_pixels"] = args.max_pixels
    return get_vlm(args.vlm, **kw)


def cmd_bench_cir(args: argparse.Namespace) -> int:
    from mmrank import registry
    from mmrank.cir.bench import run_benchmark, run_fashioniq
    from mmrank.cir.captioner import TargetCaptioner
    from mmrank.cli.common import emit
    from mmrank.eval.cir import load_benchmark

    needs_vlm = args.method in ("cir-caption", "sqaf") or args.rerank != "none"
    if needs_vlm and not args.vlm:
        raise SystemExit(f"--method {args.method} / --rerank {args.rerank} needs --vlm (hub id or local path)")
    categories = [c for c in args.categories.split(",") if c]
    benches = load_benchmark(
        args.dataset, args.annotations or args.images, args.images, args.split, categories=categories
    )
    encoder = _encoder(args)
    vlm = _vlm(args) if needs_vlm else None
    captioner = TargetCaptioner(vlm) if args.method in ("cir-caption", "sqaf") else None

    def make_retriever() -> Any:
        return registry.retriever(
            args.method, encoder=encoder, alpha=args.alpha, beta=args.beta, captioner=captioner,
            batch_size=args.batch_size, cache_dir=args.cache_dir,
        )  # fmt: skip

    reranker = None
    if args.rerank != "none":
        kw: dict[str, Any] = {"lm": vlm}
        if args.rerank == "ebr":
            kw.update(k=args.rerank_k, save_grids=args.save_grids)
        reranker = registry.reranker(args.rerank, **kw)
    config = {
        "method": args.method,
        "encoder": getattr(encoder, "model_id", args.encoder),
        "alpha": args.alpha,
        "beta": args.beta if args.method == "sqaf" else None,
        "vlm": args.vlm if needs_vlm else None,
        "rerank": args.rerank,
    }
    log = None if args.json else (lambda s: print(s, file=sys.stderr))
    common = dict(
        reranker=reranker,
        rerank_k=args.rerank_k if reranker is not None else None,
        out=args.out,
        config=config,
        chunk_size=args.chunk_size,
        on_missing=args.on_missing,
        limit=args.limit,
        log=log,
    )
    if args.dataset == "fashioniq":
        result = run_fashioniq(benches, make_retriever, **common)
    else:
        result = run_benchmark(benches[0], make_retriever(), **common)
    result["config"] = config
    metrics = result.get("metrics")
    text = None
    if metrics is not None and not args.json:
        flat = metrics.get("avg", metrics) if args.dataset == "fashioniq" else metrics
        text = "  ".join(f"{k} {v:.2f}" for k, v in flat.items() if isinstance(v, float))
    emit(args, result, text)
    return 0


def add_bench_parsers(bench_subparsers: Any) -> None:
    """Register ``cir`` under the ``bench`` subcommand."""
    p = bench_subparsers.add_parser(
        "cir",
        help="composed image retrieval on CIRR / CIRCO / FashionIQ (official metrics; test-server files)",
        description="Composed image retrieval benchmark with per-query checkpoints in --out.",
    )
    p.add_argument("--dataset", required=True, choices=("cirr", "circo", "fashioniq"))
    p.add_argument("--images", required=True, help="local image root of the dataset (see datasets/<name>.md)")
    p.add_argument("--annotations", help="annotation folder (default: --images); e.g. ../shared/data/cir")
    p.add_argument("--split", default="val", help="val | test (CIRR: test1)")
    p.add_argument("--categories", default="dress,shirt,toptee", help="FashionIQ categories")
    p.add_argument("--method", default="cir-sum", choices=METHODS)
    p.add_argument("--encoder", default="open-clip", help="open-clip | hf-clip")
    p.add_argument("--model", default="ViT-B-32", help="CLIP model name, hub id or local folder")
    p.add_argument("--pretrained", help="open_clip pretrained tag or checkpoint file (e.g. openai)")
    p.add_argument("--alpha", type=float, default=0.65, help="text weight of the composed query (WeiMoCIR 0.65)")
    p.add_argument("--beta", type=float, default=0.65, help="SQAF caption weight")
    p.add_argument("--vlm", help="VLM hub id or local path (cir-caption, sqaf, ebr, cir-pointwise)")
    p.add_argument("--max-pixels", type=int, help="VLM image pixel budget")
    p.add_argument("--rerank", default="none", choices=RERANKERS)
    p.add_argument("--rerank-k", type=int, default=9, help="candidates reranked (EBR grid size)")
    p.add_argument("--save-grids", help="write each EBR grid PNG here")
    p.add_argument("--out", default="mmrank-cir-runs", help="checkpoints and submission files (resumable)")
    p.add_argument("--on-missing", default="error", choices=("error", "skip"), help="missing image files")
    p.add_argument("--limit", type=int, help="only the first N queries (smoke test)")
    p.add_argument("--chunk-size", type=int, default=32, help="queries per checkpointed chunk")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--cache-dir", help="gallery embedding cache (content-keyed)")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench_cir)
