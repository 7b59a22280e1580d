"""``mmrank`` subcommands: list, retrieve, rerank, eval, demo, bench, train (+ index / search from the vision CLI)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mmrank.cli.common import build, emit, parse_options, positive_int
from mmrank.errors import MmrankError


def _cmd_list(args: argparse.Namespace) -> int:
    from mmrank.registry import names

    found = names()
    emit(args, found, "\n".join(f"{k}: {', '.join(v)}" for k, v in found.items()))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmrank.eval.metrics import Means, compare, evaluate
    from mmrank.io import load_qrels, load_run

    qrels = load_qrels(args.qrels)
    run = load_run(args.run)
    metrics = [m for m in args.metrics.split(",") if m.strip()]
    for m in metrics:  # validate every name and cutoff before any metric is computed
        from mmrank.eval.metrics import parse_metric

        parse_metric(m, args.rel)
    if args.compare:
        res = compare(run, load_run(args.compare), qrels, metrics, rel=args.rel, test=args.test, complete=args.complete)
        emit(args, res)
        return 0
    if args.per_query:
        emit(args, evaluate(run, qrels, metrics, rel=args.rel, per_query=True, complete=args.complete))
        return 0
    means = evaluate(run, qrels, metrics, rel=args.rel, complete=args.complete)
    assert isinstance(means, Means)
    lines = [f"{k}\t{v}" for k, v in means.items()] + [f"queries\t{means.queries}"]
    emit(args, means.to_json(), "\n".join(lines))
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from mmrank.io import load_corpus, load_queries, write_trec_run
    from mmrank.io.trec import check_trec_ids

    corpus = load_corpus(args.corpus)
    queries = load_queries(args.queries or args.corpus)
    check_trec_ids([q.id for q in queries], corpus.ids)  # fail before retrieval, not after
    kwargs = parse_options(args.option)
    if args.model:
        kwargs["model"] = args.model
    t0 = time.perf_counter()
    retriever = build("retriever", args.retriever, kwargs).index(corpus)
    run = retriever.retrieve(queries, k=args.k)
    secs = time.perf_counter() - t0
    write_trec_run(run, args.out, tag=args.retriever)
    emit(
        args,
        {"out": str(args.out), "queries": len(run), "seconds": round(secs, 3), **run.provenance()},
        f"wrote {args.out}: {len(run)} queries, top-{args.k}, {secs:.1f}s",
    )
    return 0


def _cmd_rerank(args: argparse.Namespace) -> int:
    from mmrank.io import load_corpus, load_queries, load_run, write_trec_run
    from mmrank.io.trec import check_trec_ids

    corpus = load_corpus(args.corpus) if args.corpus else None
    run = load_run(args.candidates, corpus)
    queries = load_queries(args.queries) if args.queries else None
    if args.depth:
        run = run.top(args.depth)
    check_trec_ids(list(run), (h.id for r in run.values() for h in r.hits))  # fail before reranking, not after
    kwargs = parse_options(args.option)
    if args.model:
        kwargs["model"] = args.model
    reranker = build("reranker", args.reranker, kwargs)
    t0 = time.perf_counter()
    out = reranker.rerank(queries, run, top_k=args.top_k)
    secs = time.perf_counter() - t0
    write_trec_run(out, args.out, tag=args.reranker)
    prov = out.provenance()
    emit(
        args,
        {"out": str(args.out), "queries": len(out), "seconds": round(secs, 3), **prov},
        f"wrote {args.out}: {len(out)} queries reranked by {args.reranker} in {secs:.1f}s; "
        f"model calls {prov['model_calls']}, fallbacks {prov['fallbacks'] or 'none'}",
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmrank.demo import run_demo

    result = run_demo(images=not args.text_only, qa_model=args.qa_model)
    emit(args, result["json"], result["text"])
    return 0


def _cmd_bench_exact(args: argparse.Namespace) -> int:
    from mmrank.bench.exact_search import run_exact_search_bench

    rows = run_exact_search_bench(
        n=args.n, dims=[int(d) for d in args.dims.split(",")], n_queries=args.queries, k=args.k, repeats=args.repeats
    )
    emit(args, rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmrank", description="Multimodal retrieval and reranking.")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.set_defaults(func=func)
        return sp

    add("list", "list registered methods by kind", _cmd_list)

    e = add("eval", "evaluate a run against qrels (trec_eval conventions)", _cmd_eval)
    e.add_argument("--qrels", required=True, help="TREC qrels, BEIR qrels.tsv or a BEIR folder")
    e.add_argument("--run", required=True, help="TREC run, rank_llm JSON or Rankify JSON")
    e.add_argument("--metrics", default="ndcg@10,map,mrr@10,recall@100")
    e.add_argument("--rel", type=int, default=1, help="min label counted relevant by binary metrics (DL: 2)")
    e.add_argument("--per-query", action="store_true")
    e.add_argument(
        "--complete",
        "-c",
        action="store_true",
        help="average over every judged query, a query missing from the run scoring 0 (trec_eval -c); "
        "default: the judged queries the run answers",
    )
    e.add_argument("--compare", help="a second run: report both means and a paired significance test")
    e.add_argument("--test", default="ttest", choices=["ttest", "wilcoxon", "permutation"])

    r = add("retrieve", "first-stage retrieval over a corpus, writes a TREC run", _cmd_retrieve)
    r.add_argument("--corpus", required=True, help="BEIR folder, corpus.jsonl or mmrank items JSONL")
    r.add_argument("--queries", help="queries.jsonl or topics TSV (default: from the BEIR folder)")
    r.add_argument("--retriever", default="bm25")
    r.add_argument("--model", help="encoder hub id or local path (dense retrievers)")
    r.add_argument("--k", type=positive_int, default=100)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra retriever argument")

    rr = add("rerank", "rerank candidates (rank_llm JSON, Rankify JSON, or TREC run + corpus)", _cmd_rerank)
    rr.add_argument("--candidates", required=True)
    rr.add_argument("--corpus", help="needed with a TREC run: where the candidates' content is")
    rr.add_argument("--queries", help="needed with a TREC run: the queries")
    rr.add_argument("--reranker", required=True)
    rr.add_argument("--model", help="hub id or local path of the reranker's model")
    rr.add_argument("--depth", type=positive_int, help="keep only the top DEPTH candidates of the input")
    rr.add_argument("--top-k", type=positive_int, help="rerank the top K, keep the rest below in input order")
    rr.add_argument("--out", required=True, type=Path)
    rr.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra reranker argument")

    d = add("demo", "run retrieve -> rerank -> evaluate offline on the bundled sample", _cmd_demo)
    d.add_argument("--text-only", action="store_true", help="skip the image and PDF parts")
    d.add_argument("--qa-model", help="text LLM or VLM (hub id or local folder): answer the PDF questions with it")

    b = sub.add_parser("bench", help="benchmarks", description="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    be = bsub.add_parser("exact-search", help="exact top-k: mmrank index vs torch vs faiss IndexFlatIP")
    be.add_argument("--json", action="store_true")
    be.add_argument("--n", type=positive_int, default=100_000)
    be.add_argument("--dims", default="384,512")
    be.add_argument("--queries", type=positive_int, default=1000)
    be.add_argument("--k", type=positive_int, default=100)
    be.add_argument("--repeats", type=positive_int, default=3)
    be.set_defaults(func=_cmd_bench_exact)

    try:
        from mmrank.cli import vision
    except ImportError:  # the vision CLI is optional at this layer
        vision = None  # type: ignore[assignment]
    if vision is not None:
        vision.add_parsers(sub)
        if hasattr(vision, "add_bench_parsers"):
            vision.add_bench_parsers(bsub)
    from mmrank.cli import cir, docs, maxsim, train

    cir.add_bench_parsers(bsub)
    docs.add_parsers(sub)
    docs.add_bench_parsers(bsub)
    train.add_parsers(sub)
    maxsim.add_parsers(sub)
    from mmrank.cli import serve

    serve.add_parsers(sub)
    serve.extend_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MmrankError as e:
        print(f"mmrank: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # missing, unreadable or unwritable files named on the command line
        print(f"mmrank: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
