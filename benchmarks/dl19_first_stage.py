"""Effectiveness parity on real data: DL19 first stages (trec_eval parity), BM25 on the classic collections
(vs the reference in ../shared/data/README.md), and the MiniLM bi-encoder rerank of DL19 BM25 top-100.

    .venv/bin/python benchmarks/dl19_first_stage.py     # writes benchmarks/results/dl19_first_stage.md
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import mmrank
from mmrank.retrieve.bm25 import BM25Retriever

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).parent / "results" / "dl19_first_stage.md"
FIRST = {
    "BM25": ("BM25", 0.5058),
    "BM25+RM3": ("BM25_RM3", 0.5216),
    "SPLADE++ED": ("SPLADE_P_P_ENSEMBLE_DISTIL", 0.7308),
    "TAS-B": ("D_BERT_KD_TASB", 0.7210),
    "ada2": ("OPEN_AI_ADA2", 0.7035),
}
CLASSIC = {"cranfield": (0.352, 0.288), "cisi": (0.373, 0.207), "medline": (0.671, 0.520)}


def main() -> None:
    dl = DATA / "trec-dl"
    qrels = mmrank.load_qrels(dl / "qrels" / "qrels.dl19-passage.txt")
    lines = ["# DL19 and classic collections: parity and bi-encoder rerank", ""]
    load = os.getloadavg()[0]
    lines += [f"Load average at start {load:.1f} on {os.cpu_count()} cores (shared machine: timings indicative).", ""]
    lines += ["## DL19 first stages (43 queries; nDCG@10 graded, MAP / R@100 with rel >= 2)", ""]
    lines += ["| run | nDCG@10 | reference | MAP | R@100 |", "|---|---|---|---|---|"]
    rows: dict[str, object] = {}
    for name, (folder, ref) in FIRST.items():
        run = mmrank.load_run(dl / "first_stage" / folder / "trec_results_dl19_top100.txt")
        m = mmrank.evaluate(run, qrels, ["ndcg@10", "map", "recall@100"], rel=2)
        rows[name] = m
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {ref:.4f} | {m['map']:.4f} | {m['recall@100']:.4f} |")

    bm25 = mmrank.load_run(dl / "first_stage" / "BM25" / "retrieve_results_dl19_top100.json")
    t0 = time.perf_counter()
    reranked = mmrank.reranker("bi-encoder", batch_size=64).rerank(None, bm25)
    secs = time.perf_counter() - t0
    m = mmrank.evaluate(reranked, qrels, ["ndcg@10", "map", "recall@100"], rel=2)
    sig = mmrank.compare(reranked, bm25, qrels, ["ndcg@10"])["ndcg@10"]
    rows["BM25 > MiniLM bi-encoder"] = {**m, "seconds": secs, "p_value_vs_bm25": sig["p_value"]}
    lines += [
        "",
        "## MiniLM (all-MiniLM-L6-v2) bi-encoder rerank of BM25 top-100",
        "",
        "| run | nDCG@10 | MAP | R@100 | seconds (43 q x 100) | paired t-test vs BM25 |",
        "|---|---|---|---|---|---|",
        f"| BM25 > bi-encoder | {m['ndcg@10']:.4f} | {m['map']:.4f} | {m['recall@100']:.4f} | {secs:.1f} | "
        f"p = {sig['p_value']:.2g} |",
    ]

    lines += ["", "## BM25 (bm25s, k1=0.9, b=0.4, English stemming + stopwords), top-1000", ""]
    lines += ["| collection | nDCG@10 | ref | MAP | ref | seconds |", "|---|---|---|---|---|---|"]
    for name, (rn, rm) in CLASSIC.items():
        root = DATA / "classic" / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            corpus = mmrank.load_corpus(root)
        t0 = time.perf_counter()
        run = BM25Retriever().index(corpus).retrieve(mmrank.load_queries(root), k=1000)
        secs = time.perf_counter() - t0
        cm = mmrank.evaluate(run, mmrank.load_qrels(root), ["ndcg@10", "map"])
        rows[name] = {**cm, "seconds": secs}
        lines.append(f"| {name} | {cm['ndcg@10']:.4f} | {rn:.3f} | {cm['map']:.4f} | {rm:.3f} | {secs:.2f} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    OUT.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
