"""Page retrieval on MMLongBench-Doc (55 PDFs, 2,532 pages, 375 questions with evidence pages): BM25 over the page
text (text layer, RapidOCR for pages without one), MiniLM dense over the same text, and their RRF fusion; Recall@1/5
and nDCG@5 in the question's document and across the collection. The reference in ../shared/data/README.md is BM25
over the text layer alone: in-document R@5 0.501, R@1 0.340.

    .venv/bin/python benchmarks/page_retrieval.py [--data ../shared/data/mmlongbench-doc] [--queries N]

Writes ``benchmarks/results/page_retrieval.md`` and ``.json``. LLM reranking of the hybrid's top pages by their text
with the real offline Qwen2.5-0.5B (``benchmarks/prepare_qwen.py`` converts it once):

    .venv/bin/python benchmarks/page_retrieval.py --methods hybrid,hybrid+yes-no,hybrid+mm-r5 \
        --model /work/.models/qwen2.5-0.5b-instruct --rerank-depth 5 --setting in_document --queries 100 \
        --out benchmarks/results/page_rerank_llm
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mmrank.docs.bench import load_page_benchmark, run_page_retrieval

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mmlongbench-doc"))
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--ocr", default="auto", choices=["auto", "never"])
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "mmrank" / "pages"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "page_retrieval"))
    ap.add_argument("--methods", default="bm25,dense,hybrid")
    ap.add_argument("--model", help="text LLM of the hybrid+ methods (local folder)")
    ap.add_argument("--rerank-depth", type=int, default=20)
    ap.add_argument("--setting", default="both", choices=["both", "in_document", "collection"])
    ap.add_argument("--max-text-tokens", type=int, default=256, help="page text shown to the LLM rerankers, tokens")
    ap.add_argument("--mmr5-max-new-tokens", type=int, default=512, help="MM-R5 generation budget (paper: 8192)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    bench = load_page_benchmark(args.data, queries=args.queries, cache_dir=args.cache_dir, ocr=args.ocr)
    load_s = time.perf_counter() - t0
    n_ocr = sum(1 for it in bench.pages if it.meta.get("text_source") == "ocr")
    n_none = sum(1 for it in bench.pages if it.meta.get("text_source") == "none")
    t1 = time.perf_counter()
    settings = ("in_document", "collection") if args.setting == "both" else (args.setting,)
    methods = [m for m in args.methods.split(",") if m]
    kw = {
        "hybrid+yes-no": {"max_doc_tokens": args.max_text_tokens},
        "hybrid+mm-r5": {"max_new_tokens": args.mmr5_max_new_tokens, "max_text_tokens": args.max_text_tokens},
    }
    res = run_page_retrieval(
        bench,
        methods=methods,
        log=print,
        model=args.model,
        rerank_depth=args.rerank_depth,
        settings=settings,
        reranker_kw=kw,
    )
    run_s = time.perf_counter() - t1
    meta = {
        "command": "python benchmarks/page_retrieval.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "data"),
        "pages": f"{len(bench.pages)} pages; {n_ocr} read by OCR, {n_none} with no text at all",
        "queries": len(bench.qrels),
        "seconds": {"read_pdfs": round(load_s, 1), "retrieve_and_evaluate": round(run_s, 1)},
        "cpu": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end",
    }
    lines = [
        "# Page retrieval on MMLongBench-Doc",
        "",
        *[f"- {k}: {v}" for k, v in meta.items()],
        "",
        "| method | setting | recall@1 | recall@5 | ndcg@5 |",
        "|---|---|---|---|---|",
    ]
    for m, r in res.items():
        for s in settings:
            v = r[s]
            lines.append(f"| {m} | {s} | {v['recall@1']:.4f} | {v['recall@5']:.4f} | {v['ndcg@5']:.4f} |")
    for m, r in res.items():
        if r.get("fallbacks"):
            lines += ["", f"{m} fallbacks (times): " + "; ".join(f"{k} ({n})" for k, n in r["fallbacks"].items())]
    lines += [
        "",
        "bm25: bm25s (Lucene variant, k1=0.9, b=0.4, English stemming and stopwords) over page text; dense:",
        "all-MiniLM-L6-v2 (offline wheel) over page text, cosine; hybrid: reciprocal-rank fusion (k=60) of the two.",
        "In-document ranks only the question's own PDF (one BM25 index per PDF); collection ranks all pages.",
        "Averages over every question with evidence pages (an empty ranking counts 0).",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": res}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
