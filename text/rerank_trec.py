"""Rerank a TREC DL style candidate file with any registered reranker and report nDCG@10 before and after.

    python text/rerank_trec.py ../shared/data/trec-dl/first_stage/BM25/retrieve_results_dl19_top100.json \
        --qrels ../shared/data/trec-dl/qrels/qrels.dl19-passage.txt --reranker bi-encoder
"""

from __future__ import annotations

import argparse
import json
import time

import mmrank
from mmrank.cli.common import parse_options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", help="rank_llm JSON (or Rankify JSON) with passage text")
    ap.add_argument("--qrels", required=True)
    ap.add_argument("--reranker", default="bi-encoder")
    ap.add_argument("--model")
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--queries", type=int, default=None, help="only the first N queries")
    ap.add_argument("--rel", type=int, default=2, help="binary relevance threshold (DL: 2)")
    ap.add_argument("--option", action="append", metavar="KEY=VALUE")
    ap.add_argument("--out")
    args = ap.parse_args()

    run = mmrank.load_run(args.candidates)
    if args.queries:
        run = mmrank.Run([run[q] for q in list(run)[: args.queries]], name=run.name)
    qrels = mmrank.load_qrels(args.qrels)
    kwargs = parse_options(args.option)
    if args.model:
        kwargs["model"] = args.model
    t0 = time.perf_counter()
    out = mmrank.reranker(args.reranker, **kwargs).rerank(None, run, top_k=args.top_k)
    secs = time.perf_counter() - t0
    if args.out:
        mmrank.write_trec_run(out, args.out)
    metrics = ["ndcg@10", "map"]
    # averaged over the judged queries that were run (trec_eval's default); "queries" says how many
    before = mmrank.evaluate(run, qrels, metrics, rel=args.rel)
    after = mmrank.evaluate(out, qrels, metrics, rel=args.rel)
    print(
        json.dumps(
            {
                "reranker": args.reranker,
                "queries": len(out),
                "seconds_per_query": secs / max(len(out), 1),
                "before": before.to_json(),
                "after": after.to_json(),
                **out.provenance(),
            }
        )
    )


if __name__ == "__main__":
    main()
