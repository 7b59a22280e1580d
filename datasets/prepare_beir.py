"""Write a BEIR dataset from the Hugging Face hub into the local BEIR layout mmrank reads.

    python datasets/prepare_beir.py scifact --out data/scifact [--split test]

Needs network access to the hub (``BeIR/<name>`` and ``BeIR/<name>-qrels``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    from datasets import load_dataset

    args.out.mkdir(parents=True, exist_ok=True)
    corpus = load_dataset(f"BeIR/{args.name}", "corpus", split="corpus")
    queries = load_dataset(f"BeIR/{args.name}", "queries", split="queries")
    qrels = load_dataset(f"BeIR/{args.name}-qrels", split=args.split)
    with open(args.out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for r in corpus:
            f.write(json.dumps({"_id": r["_id"], "title": r["title"], "text": r["text"]}, ensure_ascii=False) + "\n")
    with open(args.out / "queries.jsonl", "w", encoding="utf-8") as f:
        for r in queries:
            f.write(json.dumps({"_id": r["_id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    with open(args.out / "qrels.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for r in qrels:
            f.write(f"{r['query-id']}\t{r['corpus-id']}\t{r['score']}\n")
    print(f"wrote {args.out}: {len(corpus)} docs, {len(queries)} queries, {len(qrels)} qrels")


if __name__ == "__main__":
    main()
