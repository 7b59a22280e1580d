"""One short check of mmrank's GPU paths (run on a CUDA machine; writes gpu_check.md / .json to --out).

    PYTHONPATH=.:tests python3 benchmarks/gpu_check.py --out benchmarks/results

Checks: ExactIndex on CUDA equals the CPU result and is timed against it; the transformers text encoder under
bf16 autocast agrees with fp32 CPU; the causal-LM backend loads in bf16 on CUDA and its scores agree with fp32
CPU; a yes/no reranker and ICR run end to end on CUDA; faiss-gpu is used when importable.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

GPU = "cuda"  # --dry-run-cpu swaps it for "cpu" to test this script without a GPU


def _timed(fn: Any, repeats: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def check_exact_index(rows: list[dict[str, Any]]) -> None:
    from mmrank.index.exact import ExactIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((100_000, 384), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:1000] + 0.01 * rng.standard_normal((1000, 384), dtype=np.float32)
    ids = [str(i) for i in range(len(x))]
    res = {}
    for dev in ("cpu", GPU):
        ix = ExactIndex(device=dev)
        ix.add(x, ids)
        ix.search(q[:2], 100)
        res[dev] = _timed(lambda ix=ix: ix.search(q, 100))
    same = float(np.mean([a == b for a, b in zip(res["cpu"][1][1], res[GPU][1][1], strict=True)]))
    top1 = float(np.mean([r[0] == str(i) for i, r in enumerate(res[GPU][1][1])]))
    rows.append(
        {
            "check": "ExactIndex 100k x 384, 1000 q, top-100",
            "cpu_s": res["cpu"][0],
            "cuda_s": res[GPU][0],
            "identical_id_lists": same,
            "top1_is_source": top1,
            "ok": same > 0.99 and top1 == 1.0,
        }
    )


def check_faiss(rows: list[dict[str, Any]]) -> None:
    try:
        import faiss
    except ImportError:
        rows.append({"check": "faiss-gpu", "ok": None, "note": "faiss not installed on this machine"})
        return
    from mmrank.index.faiss_index import FaissFlatIndex, gpu_available

    x = np.random.default_rng(1).standard_normal((20_000, 64), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    gpu = FaissFlatIndex(use_gpu=True) if gpu_available() else None
    if gpu is None:
        rows.append({"check": "faiss-gpu", "ok": None, "note": f"faiss {faiss.__version__} sees no GPU"})
        return
    cpu = FaissFlatIndex(use_gpu=False)
    for ix in (cpu, gpu):
        ix.add(x, [str(i) for i in range(len(x))])
    same = cpu.search(x[:100], 10)[1] == gpu.search(x[:100], 10)[1]
    rows.append({"check": "faiss-gpu IndexFlatIP", "ok": bool(same)})


def check_text_encoder(rows: list[dict[str, Any]], tmp: Path) -> None:
    from tiny_text import save_tiny_cross_encoder  # tests/tiny_text.py: tiny BERT from config

    from mmrank.encoders.text import HFTextEncoder
    from mmrank.types import Item

    path = save_tiny_cross_encoder(tmp / "bert")
    texts = [Item(str(i), text=t) for i, t in enumerate(["the cat sat", "a red car drove fast", "query text"] * 20)]
    cpu = HFTextEncoder(str(path), device="cpu").encode_items(texts)
    gpu = HFTextEncoder(str(path), device=GPU).encode_items(texts)  # bf16 autocast on CUDA
    cos = float(np.min(np.sum(cpu * gpu, axis=1)))
    rows.append({"check": "HFTextEncoder bf16 autocast vs fp32 CPU", "min_cosine": cos, "ok": cos > 0.99})


def check_llm(rows: list[dict[str, Any]], tmp: Path) -> None:
    from tiny_text import save_tiny_qwen

    import mmrank
    from mmrank.llm.causal import CausalLM

    path = save_tiny_qwen(tmp / "qwen")
    prompts = ["<|im_start|>user\nis the sky blue<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>user\nhi"]
    cpu = CausalLM(str(path), device="cpu")
    gpu = CausalLM(str(path), device=GPU)
    a, b = cpu.next_token_logits(prompts), gpu.next_token_logits(prompts)
    agree = float(torch.nn.functional.cosine_similarity(a, b.float()).min())
    gen = gpu.generate(prompts, max_new_tokens=8)
    rows.append(
        {
            "check": "CausalLM bf16 on CUDA vs fp32 CPU (next-token logits)",
            "dtype": str(gpu.dtype),
            "min_cosine": agree,
            "generated": [len(g) for g in gen],
            "ok": agree > 0.98,
        }
    )
    run_rows = []
    from mmrank.types import Hit, Item, Query, Ranking, Run

    q = Query("q", text="sky colour")
    items = [Item(f"d{i}", text=f"passage {i} about the sky and colours") for i in range(6)]
    run = Run([Ranking("q", [Hit(it.id, 6.0 - i, it) for i, it in enumerate(items)], query=q)])
    for name in ("yes-no", "icr"):
        rr = mmrank.reranker(name, model=str(path), device=GPU)
        out = rr.rerank(None, run)["q"]
        run_rows.append({"reranker": name, "ids": out.ids, "calls": out.model_calls, "fallbacks": out.fallbacks})
    rows.append(
        {
            "check": "rerankers end to end on CUDA (tiny Qwen2)",
            "runs": run_rows,
            "ok": all(sorted(r["ids"]) == sorted(it.id for it in items) for r in run_rows),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--dry-run-cpu", action="store_true")
    args = ap.parse_args()
    global GPU
    if args.dry_run_cpu:
        GPU = "cpu"
    else:
        assert torch.cuda.is_available(), "this check needs CUDA"
    rows: list[dict[str, Any]] = [
        {
            "check": "device",
            "name": torch.cuda.get_device_name(0) if GPU == "cuda" else "cpu (dry run)",
            "torch": torch.__version__,
            "ok": True,
        }
    ]
    with tempfile.TemporaryDirectory() as d:
        for fn in (check_exact_index, check_faiss):
            try:
                fn(rows)
            except Exception as e:  # report every check, whatever fails
                rows.append({"check": fn.__name__, "ok": False, "error": f"{type(e).__name__}: {e}"})
        for fn2 in (check_text_encoder, check_llm):
            try:
                fn2(rows, Path(d))
            except Exception as e:
                rows.append({"check": fn2.__name__, "ok": False, "error": f"{type(e).__name__}: {e}"})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(rows, indent=2, default=str))
    lines = ["# GPU path check", "", "| check | ok | details |", "|---|---|---|"]
    for r in rows:
        details = {k: v for k, v in r.items() if k not in ("check", "ok")}
        lines.append(f"| {r['check']} | {r['ok']} | `{json.dumps(details, default=str)[:300]}` |")
    (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
