"""EBR (SQUARE, arXiv 2509.26330) single grid pass vs pointwise VLM scoring of the same K candidates: model calls,
tokens and wall time, side by side in one process with the same VLM.

    .venv/bin/python benchmarks/cir_ebr_cost.py [--queries 6] [--ks 9,16] [--repeats 3] [--vlm PATH]

Data: the synthetic CIR set from real photos (``mmrank.cir.synthetic``, photos 512 px on the long side, the size of
CIRR / COCO images); first stage: composed CLIP query (tiny random CLIP built from config: no CLIP weights exist
offline); the same top-K lists go to both rerankers. VLM: by default a tiny random Qwen2-VL built from config
(``tests/tiny_vlm.py``) with a realistic pixel budget (``--max-pixels``, default 1280*28*28 per image, so the grid
and every photo are processed at real-model token counts); ``--vlm`` takes a real local model instead.
EBR: one conversation per query (reference image + grid, greedy generation of up to 4K+16 tokens).
Pointwise: K conversations per query (reference + candidate), one forward each (yes/no logits), batched.
The order of the two methods alternates between repeats; the median over repeats is reported.
Writes ``benchmarks/results/cir_ebr_cost.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmrank.cir.ebr import EBRReranker  # noqa: E402
from mmrank.cir.pointwise import PointwiseVLMReranker  # noqa: E402
from mmrank.cir.retrieve import ComposedRetriever  # noqa: E402
from mmrank.cir.synthetic import synthetic_cir  # noqa: E402
from mmrank.encoders.clip import OpenCLIPEncoder  # noqa: E402
from mmrank.llm.vlm import VLM  # noqa: E402
from mmrank.types import Run  # noqa: E402

NOTE = """
Notes. The VLM is a tiny *random* model: its answers are not meaningful rankings (they are parsed with the recorded
repairs) and it can run to the end of its decode budget; its per-token compute is tiny, so the wall-time ratio here
reflects prefill size and call overheads on a shared 2-core CPU (load average in the header), not a real model's
speed. The model-independent part is the prompt count (1 vs K per query) and the input tokens: pointwise prefills
the reference image K times plus every candidate at full budget, EBR one reference and one grid within the same
budget. With a real VLM, EBR adds about 3-4 generated tokens per candidate that pointwise does not need.
"""


def _tokens(vlm: VLM, convs: list) -> int:
    return sum(vlm.encode(c).length for c in convs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=6)
    ap.add_argument("--ks", default="9,16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=512, help="long side of the synthetic photos")
    ap.add_argument("--vlm", help="a local VLM folder (default: tiny random Qwen2-VL)")
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cir_ebr_cost"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ks = [int(k) for k in args.ks.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="cir_cost_"))
    from tests.tiny_vision import register_tiny_open_clip

    corpus, queries, _ = synthetic_cir(tmp / "syn", size=args.size)
    queries = queries[:: max(1, len(queries) // args.queries)][: args.queries]
    clip = OpenCLIPEncoder(register_tiny_open_clip(tmp / "clip"), device=args.device)
    first = ComposedRetriever(clip).index(corpus).retrieve(queries, k=max(ks))
    if args.vlm:
        model, kind = args.vlm, args.vlm
    else:
        from tests.tiny_vlm import save_tiny_qwen2_vl

        model = str(save_tiny_qwen2_vl(tmp / "vlm", max_pixels=args.max_pixels))
        kind = "tiny random Qwen2-VL from config (tests/tiny_vlm.py)"
    vlm = VLM(model, device=args.device, max_pixels=args.max_pixels, batch_size=args.batch_size)
    rows, raw = [], {}
    load = [round(x, 2) for x in os.getloadavg()]
    for k in ks:
        lists = Run([first[q.id].top(k) for q in queries], name="first")
        ebr = EBRReranker(vlm, k=k)
        pw = PointwiseVLMReranker(vlm, batch_size=args.batch_size)
        ebr_convs = [ebr.build(q, lists[q.id].hits)[0] for q in queries]
        pw_convs = [pw.conversation(q, q.load_image(), h.item.load_image()) for q in queries for h in lists[q.id]]
        tok = {"ebr": _tokens(vlm, ebr_convs), "pointwise": _tokens(vlm, pw_convs)}
        times: dict[str, list[float]] = {"ebr": [], "pointwise": []}
        calls: dict[str, int] = {}
        prompts: dict[str, int] = {}
        for rep in range(args.repeats):
            order = [("ebr", ebr), ("pointwise", pw)]
            for name, reranker in order if rep % 2 == 0 else order[::-1]:
                c0 = vlm.calls
                t0 = time.perf_counter()
                out = reranker.rerank(queries, lists, top_k=k)
                times[name].append(time.perf_counter() - t0)
                calls[name] = vlm.calls - c0
                prompts[name] = out.provenance()["model_calls"]
        med = {n: statistics.median(v) for n, v in times.items()}
        row = {
            "k": k,
            "queries": len(queries),
            "ebr_prompts": prompts["ebr"],
            "pointwise_prompts": prompts["pointwise"],
            "ebr_backend_calls": calls["ebr"],
            "pointwise_backend_calls": calls["pointwise"],
            "ebr_input_tokens_per_query": tok["ebr"] / len(queries),
            "pointwise_input_tokens_per_query": tok["pointwise"] / len(queries),
            "ebr_max_new_tokens": 4 * k + 16,
            "ebr_answer_chars_per_query": sum(len(a) for a in ebr.answers.values()) / len(queries),
            "ebr_s_per_query": med["ebr"] / len(queries),
            "pointwise_s_per_query": med["pointwise"] / len(queries),
            "pointwise_over_ebr_time": med["pointwise"] / med["ebr"],
        }
        rows.append(row)
        raw[str(k)] = times
        print(json.dumps(row), flush=True)
    meta = {
        "vlm": kind,
        "max_pixels": args.max_pixels,
        "photo_long_side": args.size,
        "device": f"{platform.machine()} {args.device}, torch threads={args.threads}",
        "repeats": args.repeats,
        "backend_batch_size": args.batch_size,
        "load_avg_before_after": [load[0], round(os.getloadavg()[0], 2)],
        "query_ids": [q.id for q in queries],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "seconds": raw}, indent=2))
    lines = [
        "# EBR single grid pass vs pointwise VLM scoring (same VLM, same top-K lists, one run)",
        "",
        *[f"- {k}: {v}" for k, v in meta.items()],
        "- command: `python benchmarks/cir_ebr_cost.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "| K | prompts/query EBR | prompts/query pointwise | backend calls EBR / pointwise | input tokens/query EBR"
        " | input tokens/query pointwise | pointwise / EBR input tokens | EBR decode budget (tokens) | s/query EBR"
        " | s/query pointwise | pointwise / EBR time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r["queries"]
        tok_ratio = r["pointwise_input_tokens_per_query"] / r["ebr_input_tokens_per_query"]
        lines.append(
            f"| {r['k']} | {r['ebr_prompts'] / n:.0f} | {r['pointwise_prompts'] / n:.0f} | "
            f"{r['ebr_backend_calls']} / {r['pointwise_backend_calls']} | {r['ebr_input_tokens_per_query']:.0f} | "
            f"{r['pointwise_input_tokens_per_query']:.0f} | "
            f"{tok_ratio:.2f} | {r['ebr_max_new_tokens']} | "
            f"{r['ebr_s_per_query']:.3f} | {r['pointwise_s_per_query']:.3f} | **{r['pointwise_over_ebr_time']:.2f}** |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n" + NOTE)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
