"""SFT vs contrastive training of the yes/no reranker (arXiv 2510.14824) with the real offline Qwen2.5-0.5B (LoRA).

    .venv/bin/python benchmarks/prepare_qwen.py            # once: /work/.models/qwen2.5-0.5b-instruct
    .venv/bin/python benchmarks/sft_vs_contrastive.py      # defaults sized for a shared 2-core CPU

Training data, built only from Cranfield and CISI (../shared/data/classic): every query with a qrels positive,
BM25 hard negatives = BM25 top-``--mine-k`` of its own collection minus the positives (``mine_negatives``). Each
objective trains the same LoRA (r 16, alpha 32, q/k/v/o) from the same base with the same seed, data order and
number of steps (each step one group: a query, one positive, ``--negatives`` negatives). Evaluation: rerank BM25
top-20 on Medline (first ``--medline-queries`` queries) and TREC DL19 (first ``--dl19-queries`` topics, BM25 top-20
of the rank_llm file), same queries for every row; nDCG@10 (graded qrels). Rows: BM25, the untrained model with
either head, the SFT-trained model with the SFT head (p(yes)) and the contrastive-trained one with the CL head
(z_yes). Writes ``benchmarks/results/sft_vs_contrastive.{json,md}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmrank.eval.metrics import evaluate
from mmrank.io import load_corpus, load_qrels, load_queries
from mmrank.io.rankllm import read_rank_llm_json
from mmrank.io.trec import read_topics, read_trec_qrels
from mmrank.llm.causal import CausalLM
from mmrank.rerank.heads import head_scores
from mmrank.rerank.pointwise import YesNoReranker
from mmrank.retrieve.bm25 import BM25Retriever
from mmrank.train import TrainConfig, TrainExample, mine_negatives, train
from mmrank.types import Query, Run

ROOT = Path(__file__).resolve().parents[1]
DATA = next((p for p in (ROOT.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()), ROOT)
RESULTS = ROOT / "benchmarks" / "results" / "sft_vs_contrastive"
DEPTH = 20


def training_examples(k: int) -> list[TrainExample]:
    out: list[TrainExample] = []
    for name in ("cranfield", "cisi"):
        folder = DATA / "classic" / name
        corpus = load_corpus(folder / "corpus.jsonl")
        qrels = load_qrels(folder / "qrels.tsv")
        bm25 = BM25Retriever().index(corpus)
        exs = []
        for q in load_queries(folder / "queries.jsonl"):
            pos = [corpus[d] for d, g in qrels.get(q.id, {}).items() if g > 0 and d in corpus]
            if pos:
                exs.append(TrainExample(Query(f"{name}:{q.id}", q.text), pos, []))
        out += mine_negatives(exs, bm25, k=k)
    return out


def medline(n: int, depth: int) -> tuple[Run, dict[str, dict[str, int]]]:
    folder = DATA / "classic" / "medline"
    corpus = load_corpus(folder / "corpus.jsonl")
    qrels = load_qrels(folder / "qrels.tsv")
    queries = [q for q in load_queries(folder / "queries.jsonl") if q.id in qrels][:n]
    run = BM25Retriever().index(corpus).retrieve(queries, k=depth)
    return run, {q.id: qrels[q.id] for q in queries}


def dl19(n: int, depth: int) -> tuple[Run, dict[str, dict[str, int]]]:
    d = DATA / "trec-dl"
    run = read_rank_llm_json(d / "first_stage" / "BM25" / "retrieve_results_dl19_top100.json", name="bm25")
    qrels = read_trec_qrels(d / "qrels" / "qrels.dl19-passage.txt")
    order = [q.id for q in read_topics(d / "topics" / "topics.dl19-passage.txt") if q.id in run and q.id in qrels]
    qids = order[:n]
    return Run([run[q] for q in qids], name="bm25").top(depth), {q: qrels[q] for q in qids}


def ndcg(scores: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    return float(evaluate(scores, qrels, "ndcg@10")["ndcg@10"])


def head_runs(model: str, run: Run, max_doc_tokens: int) -> tuple[dict[str, dict[str, dict[str, float]]], float]:
    """Both heads' score maps for the hits of ``run`` (already cut to the depth) from one logits pass; and the
    seconds it took."""
    lm = CausalLM(model, batch_size=8, max_length=1024)
    rr = YesNoReranker(lm=lm, max_doc_tokens=max_doc_tokens)
    pairs, keys = [], []
    for qid, r in run.items():
        q = r.query
        assert q is not None, f"run has no query for {qid}"
        for h in r.hits:
            pairs.append((q, h.item))
            keys.append((qid, h.id))
    t0 = time.perf_counter()
    z, _ = rr.logits(pairs)
    secs = time.perf_counter() - t0
    out: dict[str, dict[str, dict[str, float]]] = {}
    for head in ("sft", "cl"):
        s = head_scores(z.double(), head, yes_id=rr.yes_id, no_id=rr.no_id).numpy()
        m: dict[str, dict[str, float]] = {}
        for (qid, did), v in zip(keys, s, strict=True):
            m.setdefault(qid, {})[did] = float(v)
        out[head] = m
    del lm, rr
    gc.collect()
    return out, secs


def bm25_scores(run: Run) -> dict[str, dict[str, float]]:
    return {qid: {h.id: float(h.score) for h in r.hits} for qid, r in run.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="/work/.models/qwen2.5-0.5b-instruct")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-doc-tokens", type=int, default=96)
    ap.add_argument("--mine-k", type=int, default=20)
    ap.add_argument("--medline-queries", type=int, default=30)
    ap.add_argument("--dl19-queries", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--depth", type=int, default=DEPTH, help="BM25 candidates reranked per query (default 20)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t_all = time.perf_counter()
    examples = training_examples(args.mine_k)
    evals = {"medline": medline(args.medline_queries, args.depth), "dl19": dl19(args.dl19_queries, args.depth)}
    print("train examples", len(examples), "eval queries", {c: len(q) for c, (_r, q) in evals.items()}, flush=True)
    rows: dict[str, dict[str, Any]] = {"BM25": {c: ndcg(bm25_scores(r), q) for c, (r, q) in evals.items()}}

    def score(label: str, model: str, head: str) -> None:
        row: dict[str, Any] = {}
        for c, (r, q) in evals.items():
            maps, secs = head_runs(model, r, args.max_doc_tokens)
            row[c] = ndcg(maps[head], q)
            row[f"{c}_secs"] = round(secs, 1)
            if label.startswith("untrained"):
                rows.setdefault("untrained, CL head (z_yes)", {})[c] = ndcg(maps["cl"], q)
        rows[label] = row
        print(label, row, flush=True)

    score("untrained, SFT head (p(yes))", args.llm, "sft")
    train_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for objective, head in (("sft", "sft"), ("contrastive", "cl")):
            cfg = TrainConfig(
                objective=objective,  # type: ignore[arg-type]
                negatives=args.negatives,
                max_steps=args.steps,
                lr=args.lr,
                max_doc_tokens=args.max_doc_tokens,
                max_length=1024,
                seed=0,
                save_every=args.steps,
                progress=True,
            )
            s = train(args.llm, examples, Path(tmp) / objective, cfg)
            gc.collect()
            train_info[objective] = {"seconds": s["seconds"], "losses": s["losses"], "skipped": s["skipped"]}
            print(objective, "trained in", s["seconds"], "s", flush=True)
            score(f"{objective}-trained, {head.upper()} head", str(Path(tmp) / objective), head)

    record = {
        "args": vars(args),
        "train_examples": len(examples),
        "eval_queries": {c: len(q) for c, (_r, q) in evals.items()},
        "rows": rows,
        "train": train_info,
        "seconds_total": round(time.perf_counter() - t_all, 1),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(record, indent=1))
    RESULTS.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))


def markdown(rec: dict[str, Any]) -> str:
    a, nq = rec["args"], rec["eval_queries"]
    lines = [
        "# SFT vs contrastive training of the yes/no reranker (arXiv 2510.14824)",
        "",
        f"Model {Path(a['llm']).name} (LoRA r16/alpha32 on q,k,v,o; lr {a['lr']}; {a['steps']} steps of one group: "
        f"1 positive + {a['negatives']} BM25 hard negatives from top-{a['mine_k']}; documents cut to "
        f"{a['max_doc_tokens']} tokens). Training pool: {rec['train_examples']} Cranfield+CISI queries with qrels "
        f"positives; the seeded order draws the first {a['steps']} of them. Same seed, data and steps for both.",
        f"Evaluation: rerank BM25 top-{a.get('depth', DEPTH)}; Medline {nq['medline']} queries, "
        f"DL19 {nq['dl19']} topics "
        f"(same for every row); nDCG@10. Total wall time {rec['seconds_total']}s on {rec['machine']}.",
        "",
        "| row | Medline nDCG@10 | DL19 nDCG@10 |",
        "|---|---|---|",
    ]
    for label, r in rec["rows"].items():
        lines.append(f"| {label} | {r['medline']:.4f} | {r['dl19']:.4f} |")
    parts = min(10, max(len(t["losses"]) for t in rec["train"].values()))
    lines += ["", f"| objective | train seconds | loss curve: mean loss of {parts} equal blocks of steps, in order |"]
    lines.append("|---|---|---|")
    for obj, t in rec["train"].items():
        chunks = [np.nanmean(c) for c in np.array_split(np.array(t["losses"], dtype=float), parts) if len(c)]
        lines.append(f"| {obj} | {t['seconds']:.0f} | {' -> '.join(f'{c:.3f}' for c in chunks)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
