"""Retrieve over a BEIR-layout collection and evaluate: BM25, dense, or hybrid.

python text/retrieve_beir.py ../shared/data/classic/cranfield --retriever bm25 --k 1000
python text/retrieve_beir.py path/to/scifact --retriever dense --model sentence-transformers/all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import json
import time

import mmrank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collection", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv)")
    ap.add_argument("--retriever", default="bm25", choices=["bm25", "dense", "hybrid"])
    ap.add_argument("--model", help="encoder for dense / hybrid (hub id or path)")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--metrics", default="ndcg@10,map,recall@100")
    ap.add_argument("--out", help="also write the TREC run here")
    args = ap.parse_args()

    corpus = mmrank.load_corpus(args.collection)
    queries = mmrank.load_queries(args.collection)
    qrels = mmrank.load_qrels(args.collection)
    kwargs = {"model": args.model} if args.model and args.retriever == "dense" else {}
    if args.retriever == "hybrid":
        dense = mmrank.retriever("dense", model=args.model) if args.model else "dense"
        kwargs = {"retrievers": ["bm25", dense]}
    t0 = time.perf_counter()
    run = mmrank.retriever(args.retriever, **kwargs).index(corpus).retrieve(queries, k=args.k)
    secs = time.perf_counter() - t0
    if args.out:
        mmrank.write_trec_run(run, args.out)
    result = mmrank.evaluate(run, qrels, args.metrics.split(","))
    print(json.dumps({"collection": args.collection, "retriever": args.retriever, "seconds": round(secs, 2), **result}))


if __name__ == "__main__":
    main()
