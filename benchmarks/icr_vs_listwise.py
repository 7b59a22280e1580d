"""ICR (arXiv 2410.02642) vs RankGPT sliding-window listwise (arXiv 2304.09542): latency side by side, same model,
same candidate lists, one process.

    .venv/bin/python benchmarks/prepare_qwen.py          # once: /work/.models/qwen2.5-0.5b-instruct
    .venv/bin/python benchmarks/icr_vs_listwise.py [--queries 3] [--depth 20] [--threads 2]

The ICR paper claims ICR "cuts the latency by more than 60%" against RankGPT (sliding window 20, stride 10,
passages cut to 300 words) on the same open LLM. Here: DL19 BM25 lists (first ``--queries`` judged queries in file
order, top ``--depth``), one shared Qwen2.5-Coder-0.5B-Instruct (fp32, CPU), each query reranked alone by each
method (batch of one: per-query latency); the order of the two methods alternates from query to query so that
machine load drifts hit both. RankGPT's budget is rank_llm's (the token length of a full answer).
Writes ``benchmarks/results/icr_vs_listwise.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from mmrank.eval.metrics import evaluate
from mmrank.io.rankllm import read_rank_llm_json
from mmrank.io.trec import read_trec_qrels
from mmrank.llm.causal import CausalLM
from mmrank.rerank.icr import ICRReranker
from mmrank.rerank.listwise import ListwiseReranker
from mmrank.types import Run

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "trec-dl"
MODEL = Path("/work/.models/qwen2.5-0.5b-instruct")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--queries", type=int, default=3)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "icr_vs_listwise"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    run = read_rank_llm_json(data / "first_stage" / "BM25" / "retrieve_results_dl19_top100.json", name="bm25")
    qrels = read_trec_qrels(data / "qrels" / "qrels.dl19-passage.txt")
    qids = [q for q in run if q in qrels][: args.queries]
    lists = Run([run[q].top(args.depth) for q in qids], name="bm25")
    qrels = {q: qrels[q] for q in qids}  # evaluate over the chosen queries only

    t0 = time.perf_counter()
    lm = CausalLM(args.model, device="cpu", max_length=8192, batch_size=8)
    load_s = time.perf_counter() - t0
    methods = {
        "rankgpt (window 20, step 10)": ListwiseReranker(lm=lm, window=20, step=10),
        "icr": ICRReranker(lm=lm),
    }
    secs: dict[str, list[float]] = {m: [] for m in methods}
    runs: dict[str, list] = {m: [] for m in methods}
    warm = Run([lists[qids[0]].top(2)], name="warm-up")
    for m in methods.values():  # first-call costs (allocator, kernels) are not part of either method
        m.rerank(None, warm)
    load_before = os.getloadavg()
    for i, q in enumerate(qids):
        one = Run([lists[q]], name="bm25")
        names = list(methods) if i % 2 == 0 else list(reversed(methods))
        for m in names:
            t = time.perf_counter()
            out = methods[m].rerank(None, one)
            secs[m].append(time.perf_counter() - t)
            runs[m].append(out[q])
            print(f"{q} {m}: {secs[m][-1]:.1f}s calls={out[q].model_calls} fallbacks={out[q].fallbacks}", flush=True)
    load_after = os.getloadavg()

    rows = []
    base = evaluate(lists, qrels, ["ndcg@10"])["ndcg@10"]
    for m in methods:
        r = Run(runs[m], name=m)
        rows.append(
            {
                "method": m,
                "mean_s_per_query": sum(secs[m]) / len(secs[m]),
                "per_query_s": [round(s, 2) for s in secs[m]],
                "ndcg@10": evaluate(r, qrels, ["ndcg@10"])["ndcg@10"],
                "model_calls": sum(x.model_calls for x in runs[m]),
                "queries_with_fallbacks": sum(1 for x in runs[m] if x.fallbacks),
            }
        )
    ratio = rows[1]["mean_s_per_query"] / rows[0]["mean_s_per_query"]
    meta = {
        "data": f"DL19 passage, BM25 top-{args.depth}, first {len(qids)} judged queries: {', '.join(qids)}",
        "model": f"{args.model} (fp32, CPU; default: Qwen2.5-Coder-0.5B-Instruct from the offline GGUF)",
        "device": f"{platform.processor() or platform.machine()}, torch threads={torch.get_num_threads()}",
        "load_avg_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "model_load_s": round(load_s, 1),
        "bm25_ndcg@10": base,
        "icr_over_rankgpt_latency": ratio,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# ICR vs RankGPT sliding-window latency (same model, same lists, one run)",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "| method | mean s/query | per query s | nDCG@10 | model calls | queries with fallbacks |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['mean_s_per_query']:.1f} | {r['per_query_s']} | {r['ndcg@10']:.4f} | "
            f"{r['model_calls']} | {r['queries_with_fallbacks']} |"
            for r in rows
        ),
        "",
        f"ICR / RankGPT latency ratio: **{ratio:.2f}** (the paper reports a reduction of more than 60%, i.e. < 0.40, "
        "with vLLM on GPUs and top-100 lists; this is a 2-core shared CPU, a 0.5B model and top-20 lists). "
        "nDCG@10 over so few queries is noise-level and is shown only to confirm both methods ran.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
