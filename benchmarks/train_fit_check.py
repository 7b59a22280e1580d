"""Can the real 0.5B fit a handful of training groups? A sanity check behind ``sft_vs_contrastive.py``.

    .venv/bin/python benchmarks/train_fit_check.py    # after benchmarks/prepare_qwen.py

The long benchmark's losses stayed at the label prior (SFT) and at chance (InfoNCE). This run asks whether that is
the optimisation (LoRA, lr, one group a step) or the data: it takes the first ``--groups`` Cranfield+CISI training
queries, each with one qrels positive and its top ``--negatives`` BM25 hard negatives (fixed groups), trains each
objective with the benchmark's settings for ``--epochs`` passes over them, and reports the loss per epoch and the
share of groups whose positive gets the top score under the objective's head, before and after (the training
groups themselves: a fitting check, not a generalisation one). Writes ``benchmarks/results/train_fit_check.{json,md}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sft_vs_contrastive import training_examples

from mmrank.llm.causal import CausalLM
from mmrank.rerank.heads import head_scores
from mmrank.rerank.pointwise import YesNoReranker
from mmrank.train import TrainConfig, TrainExample, train

RESULTS = Path(__file__).resolve().parent / "results" / "train_fit_check"


def top1(model: str, groups: list[TrainExample], max_doc_tokens: int) -> dict[str, float]:
    """For each head (``sft``, ``cl``), the share of groups whose positive (index 0) scores highest; one pass."""
    rr = YesNoReranker(lm=CausalLM(model, batch_size=8, max_length=1024), max_doc_tokens=max_doc_tokens)
    pairs = [(g.query, it) for g in groups for it in g.positives + g.negatives]
    z, _ = rr.logits(pairs)
    out = {}
    for head in ("sft", "cl"):
        s = head_scores(z.double(), head, yes_id=rr.yes_id, no_id=rr.no_id).numpy().reshape(len(groups), -1)
        out[head] = float(np.mean(s.argmax(1) == 0))
    del rr
    gc.collect()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="/work/.models/qwen2.5-0.5b-instruct")
    ap.add_argument("--groups", type=int, default=6)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-doc-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pool = training_examples(20)
    rng = np.random.default_rng(0)
    picked = [pool[int(i)] for i in rng.permutation(len(pool))[: args.groups]]
    groups = [TrainExample(e.query, e.positives[:1], e.negatives[: args.negatives]) for e in picked]
    rec: dict[str, Any] = {"args": vars(args), "queries": [g.query.id for g in groups], "objectives": {}}
    before = top1(args.llm, groups, args.max_doc_tokens)  # the base model, once for both heads
    with tempfile.TemporaryDirectory() as tmp:
        for objective, head in (("sft", "sft"), ("contrastive", "cl")):
            cfg = TrainConfig(
                objective=objective,  # type: ignore[arg-type]
                negatives=args.negatives,
                epochs=args.epochs,
                lr=args.lr,
                max_doc_tokens=args.max_doc_tokens,
                max_length=1024,
                seed=0,
                save_every=10**6,
                progress=False,
            )
            t0 = time.perf_counter()
            s = train(args.llm, groups, Path(tmp) / objective, cfg)
            after = top1(str(Path(tmp) / objective), groups, args.max_doc_tokens)[head]
            per_epoch = [float(np.mean(c)) for c in np.array_split(np.array(s["losses"]), args.epochs)]
            rec["objectives"][objective] = {
                "top1_before": before[head],
                "top1_after": after,
                "loss_per_epoch": per_epoch,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(objective, rec["objectives"][objective], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(rec, indent=1))
    a = rec["args"]
    lines = [
        "# Fitting check: can the offline 0.5B fit a few yes/no training groups?",
        "",
        f"{a['groups']} Cranfield+CISI groups (1 positive + {a['negatives']} BM25 hard negatives each, fixed), "
        f"{a['epochs']} epochs, one group a step, lr {a['lr']}, LoRA r16 q/k/v/o, documents cut to "
        f"{a['max_doc_tokens']} tokens. Top-1: share of the training groups whose positive scores highest.",
        "",
        "| objective | top-1 before | top-1 after | seconds | loss per epoch |",
        "|---|---|---|---|---|",
    ]
    for obj, r in rec["objectives"].items():
        curve = " -> ".join(f"{v:.3f}" for v in r["loss_per_epoch"])
        lines.append(f"| {obj} | {r['top1_before']:.2f} | {r['top1_after']:.2f} | {r['seconds']:.0f} | {curve} |")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
