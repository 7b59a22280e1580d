"""``mmrank serve``: the HTTP service; ``--engine ray`` options for ``mmrank index`` / ``mmrank rerank``."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from mmrank.cli.common import parse_options, positive_int
from mmrank.errors import OptionError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise OptionError(f"--api-key-env {args.api_key_env}: that environment variable is empty or unset")
    if not is_loopback(args.host) and key is None:
        raise OptionError(
            f"refusing to serve on {args.host} without an API key: pass --api-key-env VAR (or bind 127.0.0.1)"
        )
    from mmrank.serve import create_app

    app = create_app(
        args.index_dir,
        reranker=args.reranker,
        model=args.model,
        reranker_options=parse_options(args.option),
        api_key=key,
        device=args.device,
        max_batch=1 if args.no_batching else args.max_batch,
        max_wait_ms=args.max_wait_ms,
        qa_model=args.qa_model,
        compose_alpha=args.compose_alpha,
    )
    print(f"mmrank: serving {args.index_dir or '(no index)'} on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="HTTP service: /search, /rerank, /ask, results page at /")
    p.add_argument("index_dir", nargs="?", help="an index folder (any family); omit for a /rerank-only service")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; others need an API key)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--reranker", help="registered reranker for /rerank and search?rerank=true")
    p.add_argument("--model", help="the reranker's model (hub id or local path)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra reranker argument")
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--device", help="cpu / cuda for the index's encoder")
    p.add_argument("--qa-model", help="page indexes: a text LLM or VLM (hub id or path) that answers POST /ask")
    p.add_argument(
        "--compose-alpha",
        type=float,
        help="CLIP image indexes: text weight of composed queries, normalize((1-a) E_img + a E_txt) (default 0.65)",
    )
    p.add_argument("--max-batch", type=positive_int, default=16, help="requests per model call (micro-batching)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others to join")
    p.add_argument("--no-batching", action="store_true", help="one request per model call")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_serve)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray``, ``--ray-address``, ``--workers`` on ``index`` / ``rerank``."""
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="run in this process or on Ray")
    p.add_argument("--ray-address", help="join a running Ray cluster (default: start a local runtime)")
    p.add_argument("--workers", type=positive_int, default=1, help="Ray actors (one model each)")


def cmd_index_text(args: argparse.Namespace) -> int:
    import json

    from mmrank.retrieve.text_index import index_corpus

    report = index_corpus(
        args.folder,
        args.out,
        retriever=args.retriever,
        model=args.model,
        batch_size=args.batch_size or 64,
        engine=args.engine,
        ray_address=args.ray_address,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    if args.json:
        print(json.dumps({"out": str(report.out_dir), "indexed": report.count, "seconds": round(report.seconds, 3)}))
    else:
        print(report.summary())
    return 0


def _is_text_corpus(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    return (p.is_file() and p.suffix == ".jsonl") or (p.is_dir() and (p / "corpus.jsonl").is_file())


def cmd_rerank_ray(args: argparse.Namespace, local: Any) -> int:
    if args.engine != "ray":
        return int(local(args))
    import time

    from mmrank.cli.common import check_options, emit
    from mmrank.io import load_corpus, load_queries, load_run, write_trec_run
    from mmrank.registry import resolve
    from mmrank.scale.ray_engine import rerank_ray

    corpus = load_corpus(args.corpus) if args.corpus else None
    run = load_run(args.candidates, corpus)
    queries = load_queries(args.queries) if args.queries else None
    if args.depth:
        run = run.top(args.depth)
    options = parse_options(args.option)
    if args.model:
        options["model"] = args.model
    check_options(resolve("reranker", args.reranker), options, f"reranker {args.reranker!r}")
    t0 = time.perf_counter()
    out = rerank_ray(
        args.reranker, queries, run, options=options, top_k=args.top_k, workers=args.workers, address=args.ray_address
    )
    secs = time.perf_counter() - t0
    write_trec_run(out, args.out, tag=args.reranker)
    prov = out.provenance()
    emit(
        args,
        {"out": str(args.out), "queries": len(out), "seconds": round(secs, 3), "engine": "ray", **prov},
        f"wrote {args.out}: {len(out)} queries reranked by {args.reranker} on Ray ({args.workers} workers) "
        f"in {secs:.1f}s; model calls {prov['model_calls']}, fallbacks {prov['fallbacks'] or 'none'}",
    )
    return 0


def extend_parsers(subparsers: Any) -> None:
    """Give ``mmrank index`` text corpora (BM25 / dense) and ``--engine ray``; ``mmrank rerank`` ``--engine ray``."""
    choices = subparsers.choices
    if "index" in choices:
        p = choices["index"]
        p.add_argument("--retriever", choices=("bm25", "dense"), default="dense", help="text corpora: index kind")
        add_engine_options(p)
        image_index = p.get_default("func")

        def index(args: argparse.Namespace) -> int:
            if _is_text_corpus(args.folder):
                if args.retriever == "dense" and not args.model:
                    args.model = None  # the default MiniLM
                return cmd_index_text(args)
            return int(image_index(args))

        p.set_defaults(func=index)
    if "rerank" in choices:
        p = choices["rerank"]
        add_engine_options(p)
        local = p.get_default("func")
        p.set_defaults(func=lambda args: cmd_rerank_ray(args, local))
