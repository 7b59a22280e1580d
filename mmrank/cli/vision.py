"""Vision subcommands: ``mmrank index``, ``mmrank search`` and ``mmrank bench image-retrieval``.

The main CLI calls :func:`add_parsers` on its subparsers (and :func:`add_bench_parsers` on the shared ``bench``
subparsers); every parser sets ``func`` so the caller dispatches with ``args.func(args)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mmrank.cli.common import json_safe, positive_int
from mmrank.errors import OptionError


def _encoder_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    name = args.encoder.lower()
    kw: dict[str, Any] = {}
    if name in ("cnn", "gem", "cnn-gem", "superglobal", "supg", "superglobal-cnn"):
        kw["backbone"] = args.backbone
        kw["weights"] = None if args.weights == "none" else args.weights
        if args.pooling and name in ("cnn", "gem", "cnn-gem"):
            kw["pooling"] = args.pooling
    else:
        if not args.model:
            raise OptionError(f"--encoder {args.encoder} needs --model (name, hub id or local path)")
        kw["model"] = args.model
        if args.pretrained:
            kw["pretrained"] = args.pretrained
    if args.device:
        kw["device"] = args.device
    return kw


def _holds_pdfs(folder: str) -> bool:
    from pathlib import Path

    p = Path(folder)
    return p.suffix.lower() == ".pdf" or (p.is_dir() and next(p.rglob("*.pdf"), None) is not None)


def cmd_index(args: argparse.Namespace) -> int:
    from mmrank.vision.index import index_folder

    if _holds_pdfs(args.folder):  # a PDF or a folder of PDFs: a page index (text layer / OCR, BM25 [+ dense])
        from mmrank.docs.index import index_pdfs

        if getattr(args, "engine", "local") == "ray":
            raise OptionError("--engine ray encodes text corpora and image folders; PDF page indexes run locally")

        rep = index_pdfs(
            args.folder, args.out, encoder=args.text_encoder, overwrite=args.overwrite, progress=not args.json
        )
        for w in rep.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if args.json:
            print(json.dumps({"out": str(rep.out_dir), "pages": rep.pages, "skipped": rep.failed}))
        else:
            print(rep.summary())
        return 0

    report = index_folder(
        args.folder,
        args.out,
        encoder=args.encoder,
        encoder_kwargs=_encoder_kwargs(args),
        index=args.index,
        use_cache=not args.no_cache,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        engine=getattr(args, "engine", "local"),  # --engine / --ray-address / --workers come from cli/serve.py
        ray_address=getattr(args, "ray_address", None),
        workers=getattr(args, "workers", 1),
    )
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for n in report.notes:
        print(f"note: {n}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(report.out_dir),
                    "indexed": report.n_indexed,
                    "from_cache": report.n_from_cache,
                    "encoded": report.n_encoded,
                    "skipped": report.warnings,
                }
            )
        )
    else:
        print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from mmrank.types import Query
    from mmrank.vision.search import ImageSearch
    from mmrank.vision.sheet import contact_sheet

    if not args.text and not args.image:
        raise OptionError("give --text, --image, or both (a composed query: the image modified by the text)")
    from pathlib import Path

    q = Query("query", text=args.text or None, image=args.image, meta={"label": Path(args.image or "text").name})
    from pathlib import Path as _P

    if (_P(args.index_dir) / "mmrank_pages.json").is_file():
        from mmrank.collection import open_index

        ranking = open_index(args.index_dir).search(q, args.k)
        if args.json:
            refs = [h.item.page if h.item is not None else None for h in ranking]
            hits = [
                {"id": h.id, "score": h.score, "doc": p.doc_id if p else None, "page": p.page if p else None}
                for h, p in zip(ranking, refs, strict=True)
            ]
            print(json.dumps(json_safe({"query": args.text, "hits": hits}), allow_nan=False))
        else:
            for r, h in enumerate(ranking, 1):
                print(f"{r:3d}  {h.score:.4f}  {h.id}")
        return 0
    engine = ImageSearch(args.index_dir, device=args.device, compose_alpha=args.compose_alpha)
    ranking = engine.search(q, args.k, rerank=args.rerank)
    if args.sheet or args.html:
        png = args.sheet or str(Path(args.html).with_suffix(".png"))
        contact_sheet(q, ranking, png, args.html, k=args.k)
    if args.json:
        query = {"text": args.text, "image": args.image} if q.composed else args.text or args.image
        payload: dict[str, Any] = {"query": query, "hits": [{"id": h.id, "score": h.score} for h in ranking]}
        if "composed" in ranking.meta:
            payload["composed"] = ranking.meta["composed"]
        print(json.dumps(json_safe(payload), allow_nan=False))
    else:
        for r, h in enumerate(ranking, 1):
            print(f"{r:3d}  {h.score:.4f}  {h.id}")
    return 0


def cmd_bench_image(args: argparse.Namespace) -> int:
    from mmrank.vision.bench import bench_labelled_folder

    log = None if args.json else (lambda s: print(s, file=sys.stderr))
    results, warnings = bench_labelled_folder(
        args.images,
        args.labels,
        backbone=args.backbone,
        weights=None if args.weights == "none" else args.weights,
        configs=args.configs,
        M=args.M,
        K=args.K,
        beta=args.beta,
        batch_size=args.batch_size,
        device=args.device,
        log=log,
    )
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe(results), allow_nan=False))
    else:
        width = max(len(n) for n in results)
        print(f"{'configuration':<{width}}  mAP     P@10")
        for n, r in results.items():
            print(f"{n:<{width}}  {r['mAP']:.4f}  {r['P@10']:.4f}")
    return 0


def _encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--encoder",
        default="superglobal",
        help="superglobal | cnn | open-clip | hf-clip | colqwen2 | colpali (default superglobal)",
    )
    p.add_argument("--backbone", default="mobilenet_v2", help="CNN backbone (torchvision name or timm:<name>)")
    p.add_argument("--weights", default="default", help="CNN weights: default | none | path to a state dict")
    p.add_argument("--pooling", choices=("gem", "avg", "max"), help="pooling of the plain cnn encoder")
    p.add_argument("--model", help="CLIP model: open_clip name / local folder, or transformers hub id / path")
    p.add_argument("--pretrained", help="open_clip pretrained tag or checkpoint file")
    p.add_argument("--device", help="cpu / cuda (default: cuda when available)")


def add_parsers(subparsers: Any, *, with_bench: bool = False) -> None:
    """Register ``index`` and ``search`` (and a ``bench`` group with ``image-retrieval`` if ``with_bench``)."""
    p = subparsers.add_parser("index", help="index an image folder (embedding cache keyed by file content)")
    p.add_argument("folder")
    p.add_argument("--out", required=True, help="output folder for the index, cache and manifest")
    _encoder_args(p)
    p.add_argument(
        "--index",
        default="auto",
        help="auto (faiss-gpu if present, else exact) | exact | faiss-flat | faiss-hnsw | faiss-ivf",
    )
    p.add_argument("--no-cache", action="store_true")
    p.add_argument(
        "--text-encoder",
        help="PDFs only: also store dense page-text vectors from this encoder (e.g. sentence-transformers) for "
        "hybrid BM25 + dense search; default BM25 over page text",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="accept an --out folder that holds other files (they are left alone); new or earlier index folders "
        "need no flag",
    )
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser("search", help="search an image index with a text or an image query")
    p.add_argument("index_dir")
    p.add_argument("--text", help="query text (with --image: the modification text of a composed query)")
    p.add_argument("--image", help="query image (with --text: a composed query, CLIP-style indexes only)")
    p.add_argument(
        "--compose-alpha",
        type=float,
        default=0.65,
        help="text weight of a composed query, normalize((1-a) E_img + a E_txt) (WeiMoCIR default 0.65)",
    )
    p.add_argument("-k", type=positive_int, default=10)
    p.add_argument("--rerank", action="store_true", help="SuperGlobal reranking of the top 400")
    p.add_argument("--sheet", help="write a contact sheet PNG here")
    p.add_argument("--html", help="write a contact sheet HTML page here")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    if with_bench:
        bench = subparsers.add_parser("bench", help="benchmarks")
        add_bench_parsers(bench.add_subparsers(dest="bench_command", required=True))


def add_bench_parsers(bench_subparsers: Any) -> None:
    """Register ``image-retrieval`` under the ``bench`` subcommand."""
    from mmrank.vision.bench import DEFAULT_CONFIGS

    p = bench_subparsers.add_parser(
        "image-retrieval", help="leave-one-out mAP / P@10 of pooling and SuperGlobal ablations on a labelled folder"
    )
    p.add_argument("--images", required=True, help="image folder")
    p.add_argument("--labels", required=True, help="CSV with columns path,label")
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--weights", default="default", help="default | none | path to a state dict")
    p.add_argument("--configs", nargs="+", choices=list(DEFAULT_CONFIGS), help="subset of configurations")
    p.add_argument("--M", type=positive_int, default=400)
    p.add_argument("--K", type=positive_int, default=9)
    p.add_argument("--beta", type=float, default=0.15)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print one JSON object {configuration: {mAP, P@10, ...}}")
    p.set_defaults(func=cmd_bench_image)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m mmrank.cli.vision``) until the main CLI wires these in."""
    parser = argparse.ArgumentParser(prog="mmrank")
    add_parsers(parser.add_subparsers(dest="command", required=True), with_bench=True)
    args = parser.parse_args(argv)
    from mmrank.errors import MmrankError

    try:
        return int(args.func(args) or 0)
    except MmrankError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
