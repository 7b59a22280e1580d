"""``mmrank ask`` (question answering over a PDF or a folder of PDFs, with cited pages) and
``mmrank bench page-retrieval`` (page retrieval on a folder in the MMLongBench-Doc layout).

The main CLI calls :func:`add_parsers` on its subcommands and :func:`add_bench_parsers` on ``bench``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmrank.cli.common import emit, positive_int


def _pages(target: Path, args: argparse.Namespace) -> Any:
    from mmrank.docs import load_pdf_folder, pdf_pages

    kw: dict[str, Any] = {"ocr": args.ocr, "cache_dir": args.cache_dir}
    if target.is_dir():
        return load_pdf_folder(target, progress=not args.json, **kw)
    return pdf_pages(target, password=args.password, **kw)


def cmd_ask(args: argparse.Namespace) -> int:
    import sys

    from mmrank.docs.qa import ask

    pages = _pages(Path(args.target), args)
    for w in pages.warnings:
        print(f"mmrank: warning: {w}", file=sys.stderr)
    ans = ask(args.question, pages.items, lm=args.model, k=args.k, thumbnails=args.thumbnails)
    lines = [ans.text, ""] + [f"  [{c.doc_id} p.{c.page}] score {c.score:.3f}" for c in ans.citations]
    emit(args, ans.as_dict(), "\n".join(lines))
    return 0


def cmd_bench_pages(args: argparse.Namespace) -> int:
    import sys

    from mmrank.docs.bench import load_page_benchmark, run_page_retrieval

    bench = load_page_benchmark(args.data, queries=args.queries, cache_dir=args.cache_dir, progress=not args.json)
    for w in bench.warnings[:20]:
        print(f"mmrank: warning: {w}", file=sys.stderr)
    log = None if args.json else (lambda m: print(f"... {m}", file=sys.stderr))
    settings = ("in_document", "collection") if args.setting == "both" else (args.setting,)
    res = run_page_retrieval(
        bench,
        methods=[m for m in args.methods.split(",") if m],
        log=log,
        model=args.model,
        rerank_depth=args.rerank_depth,
        settings=settings,
    )
    rows = ["| method | setting | recall@1 | recall@5 | ndcg@5 |", "|---|---|---|---|---|"]
    for m, r in res.items():
        for s in settings:
            v = r[s]
            rows.append(f"| {m} | {s} | {v['recall@1']:.4f} | {v['recall@5']:.4f} | {v['ndcg@5']:.4f} |")
    n = next(iter(res.values()))["queries"] if res else 0
    emit(args, res, "\n".join(rows) + f"\n({n} queries)")
    return 0


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser("ask", help="answer a question over a PDF or a folder of PDFs, citing pages")
    p.add_argument("target", help="a PDF file or a folder of PDFs")
    p.add_argument("question")
    p.add_argument("--model", required=True, help="text LLM or VLM: hub id or local folder")
    p.add_argument("--k", type=positive_int, default=3, help="pages given to the model")
    p.add_argument("--ocr", default="auto", choices=["auto", "always", "never"])
    p.add_argument("--password", help="password of an encrypted PDF")
    p.add_argument("--cache-dir", help="cache page texts and renders here (keyed by file content)")
    p.add_argument("--thumbnails", help="write thumbnails of the cited pages into this folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)


def add_bench_parsers(bench_subparsers: Any) -> None:
    p = bench_subparsers.add_parser(
        "page-retrieval", help="page retrieval (in document and across the collection) on an MMLongBench-style folder"
    )
    p.add_argument("--data", required=True, help="folder with documents/, queries.jsonl, page_qrels.tsv")
    p.add_argument(
        "--methods",
        default="bm25,dense,hybrid",
        help="add hybrid+ql, hybrid+yes-no or hybrid+mm-r5 (need --model) for LLM reranking of the hybrid's top pages",
    )
    p.add_argument("--model", help="text LLM of the hybrid+ methods: hub id or local folder")
    p.add_argument("--rerank-depth", type=positive_int, default=20, help="pages reranked per query by hybrid+ methods")
    p.add_argument("--setting", default="both", choices=["both", "in_document", "collection"])
    p.add_argument("--queries", type=positive_int, help="use only the first N judged queries")
    p.add_argument("--cache-dir", help="cache page texts (OCR) here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_pages)
