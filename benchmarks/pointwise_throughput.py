"""Pointwise scoring throughput, side by side in one process on the same model and the same pairs:

* cross-encoder: mmrank ``CrossEncoderReranker.score_pairs`` (tokenised once, length-sorted batches) vs a naive
  per-pair loop vs sentence-transformers ``CrossEncoder.predict``;
* LLM yes/no judge: mmrank ``YesNoReranker.score_pairs`` (length-sorted batches, with and without per-query
  prompt-prefix KV reuse) vs a naive per-pair loop.

    .venv/bin/python benchmarks/pointwise_throughput.py [--pairs 215] [--repeats 3] [--threads 1]

Models are random-weight BERT / Qwen2 built from config, saved and reloaded with ``from_pretrained`` -- throughput
depends on shapes and token counts, not weights: a tiny BERT (2 layers, hidden 32, tiny vocabulary), a BERT of
cross-encoder/ms-marco-MiniLM-L-6-v2's shape with the real MiniLM WordPiece tokenizer, and a 4-layer hidden-256
Qwen2 with the real Qwen2.5 tokenizer when the converted model directory exists (else the tiny BPE one). Pairs are
real DL19 queries x BM25 passages when ../shared/data is present. Every path's scores are checked against the naive
loop (max abs difference reported). Median of ``--repeats`` timings after a warm-up. Writes
``benchmarks/results/pointwise_throughput.md`` and ``.json``.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmrank.rerank.crossencoder import CrossEncoderReranker  # noqa: E402
from mmrank.rerank.pointwise import YesNoReranker  # noqa: E402
from mmrank.types import Item, Query  # noqa: E402
from tests.tiny_text import save_tiny_cross_encoder, save_tiny_qwen  # noqa: E402

REAL_QWEN = Path("/work/.models/qwen2.5-0.5b-instruct")  # only its tokenizer is used, when present
DATA = ROOT / ".." / "shared" / "data" / "trec-dl" / "first_stage" / "BM25" / "retrieve_results_dl19_top100.json"
Pairs = list[tuple[Query, Item]]


def load_pairs(n: int) -> tuple[Pairs, str]:
    if DATA.is_file():
        data = json.loads(DATA.read_text())
        per_q = max(1, n // len(data))
        pairs = []
        for qi, e in enumerate(data):
            for h in e["hits"][:per_q]:
                pairs.append((Query(str(qi), text=e["query"]), Item(str(h["docid"]), text=h["content"])))
        return pairs[:n], f"DL19 BM25: {len(data)} queries x top-{per_q} passages"
    words = ["the", "cat", "sat", "on", "mat", "paris", "is", "capital", "of", "france", "dogs", "bark", "at"]
    rng = np.random.default_rng(0)
    pairs = [
        (Query(str(i // 8), text=" ".join(rng.choice(words, 6))), Item(str(i), text=" ".join(rng.choice(words, 60))))
        for i in range(n)
    ]
    return pairs, "synthetic"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, np.ndarray]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), np.asarray(out, dtype=np.float64)


def row(model: str, path: str, n: int, t: float, t_naive: float, s: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    return {
        "model": model,
        "path": path,
        "pairs": n,
        "seconds": round(t, 3),
        "pairs_per_s": round(n / t, 1),
        "speedup_vs_naive": round(t_naive / t, 2),
        "max_abs_diff_vs_naive": float(np.abs(s - ref).max()),
    }


def bench_cross_encoder(label: str, path: str, pairs: Pairs, args: argparse.Namespace) -> list[dict[str, Any]]:
    from sentence_transformers import CrossEncoder

    mm = CrossEncoderReranker(path, device="cpu", batch_size=args.batch_size, max_length=512)
    tok, model = mm.lm.tokenizer, mm.lm.model

    def naive() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for q, it in pairs:
                enc = tok(q.text, it.full_text, truncation=True, max_length=512, return_tensors="pt")
                out.append(float(model(**enc).logits[0, 0]))
        return np.array(out)

    st = CrossEncoder(path, device="cpu", max_length=512)
    st_pairs = [(q.text, it.full_text) for q, it in pairs]
    t_naive, ref = timed(naive, args.repeats)
    t_st, s_st = timed(
        lambda: st.predict(st_pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity()), args.repeats
    )
    t_mm, s_mm = timed(lambda: mm.score_pairs(pairs)[0], args.repeats)
    lens = [len(tok(q.text, it.full_text, truncation=True, max_length=512)["input_ids"]) for q, it in pairs]
    label = f"{label} (mean {np.mean(lens):.0f} tokens/pair)"
    return [
        row(label, name, len(pairs), t, t_naive, s, ref)
        for name, t, s in [
            ("naive per-pair loop", t_naive, ref),
            (f"sentence-transformers CrossEncoder.predict (batch {args.batch_size})", t_st, s_st),
            (f"mmrank cross-encoder (length-sorted batches of {args.batch_size})", t_mm, s_mm),
        ]
    ]


def bench_yes_no(label: str, path: str, pairs: Pairs, args: argparse.Namespace) -> list[dict[str, Any]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    yes_prefix = YesNoReranker(path, device="cpu", batch_size=16, reuse_prefix=True)
    yes_plain = YesNoReranker(path, device="cpu", batch_size=16, reuse_prefix=False)
    lm = yes_plain.lm
    qtok = AutoTokenizer.from_pretrained(path)
    qmodel = AutoModelForCausalLM.from_pretrained(path).eval()
    yes_id, no_id = yes_plain.yes_id, yes_plain.no_id

    def naive() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for q, it in pairs:
                d = lm.truncate_text(" ".join(it.full_text.split()), yes_plain.max_doc_tokens)
                ids = qtok(yes_plain.render(q.text, d), add_special_tokens=False, return_tensors="pt")
                z = qmodel(**ids, logits_to_keep=1).logits[0, -1].double()  # last position only, as mmrank
                out.append(float(torch.softmax(torch.stack([z[no_id], z[yes_id]]), 0)[1]))
        return np.array(out)

    t_naive, ref = timed(naive, args.repeats)
    t_plain, s_plain = timed(lambda: yes_plain.score_pairs(pairs)[0], args.repeats)
    t_pre, s_pre = timed(lambda: yes_prefix.score_pairs(pairs)[0], args.repeats)
    return [
        row(label, name, len(pairs), t, t_naive, s, ref)
        for name, t, s in [
            ("naive per-pair loop (logits at the last position only)", t_naive, ref),
            ("mmrank yes-no, batches of 16, no prefix reuse", t_plain, s_plain),
            ("mmrank yes-no, batches of 16, per-query prefix KV reuse", t_pre, s_pre),
        ]
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=215)
    ap.add_argument("--llm-pairs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pointwise_throughput")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from mmrank.encoders.text import resolve_text_model

    pairs, source = load_pairs(args.pairs)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        minilm_tok = AutoTokenizer.from_pretrained(resolve_text_model("minilm"))
        ce_models = [
            ("tiny BERT 2x32, tiny vocab", save_tiny_cross_encoder(Path(tmp) / "ce_tiny")),
            (
                "BERT 6x384 (ms-marco-MiniLM-L-6 shape), MiniLM WordPiece vocab",
                save_tiny_cross_encoder(Path(tmp) / "ce", hidden=384, layers=6, heads=12, tokenizer=minilm_tok),
            ),
        ]
        for label, path in ce_models:
            rows += bench_cross_encoder(label, str(path), pairs, args)
        if not args.skip_llm:
            qwen_tok, tok_name = None, "tiny BPE vocab"
            if REAL_QWEN.is_dir():
                qwen_tok, tok_name = AutoTokenizer.from_pretrained(REAL_QWEN), "Qwen2.5 vocab"
            qwen_dir = str(save_tiny_qwen(Path(tmp) / "qwen", layers=4, hidden=256, tokenizer=qwen_tok))
            rows += bench_yes_no(f"Qwen2 4x256, {tok_name}", qwen_dir, pairs[: args.llm_pairs], args)
    env = {
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "pairs": source,
        "repeats": args.repeats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    lines = [
        "# Pointwise scoring throughput (same model, same pairs, one process)",
        "",
        f"Pairs: {source}. CPU, {args.threads} torch thread(s), shared {os.cpu_count()}-core machine (other jobs "
        f"running); median of {args.repeats} runs after a warm-up. Random-weight models from config (shapes and "
        "token counts drive the cost). Generated by `benchmarks/pointwise_throughput.py`.",
        "",
        "| model | path | pairs | seconds | pairs/s | speed-up vs naive | max abs diff vs naive |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['path']} | {r['pairs']} | {r['seconds']} | {r['pairs_per_s']} | "
            f"{r['speedup_vs_naive']}x | {r['max_abs_diff_vs_naive']:.2e} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
