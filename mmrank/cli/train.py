"""``mmrank train``: LoRA-train a yes/no reranker with the SFT or contrastive objective (arXiv 2510.14824).

The output folder holds a PEFT adapter usable at once: ``mmrank rerank --reranker yes-no --model OUT`` (text LLM)
or ``--reranker vlm-yes-no`` (VLM). ``--mine-corpus`` adds BM25 hard negatives (top ``--mine-k`` minus positives).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmrank.cli.common import emit, positive_int


def _cmd_train(args: argparse.Namespace) -> int:
    from mmrank.train import TrainConfig, load_examples, mine_negatives, train

    cfg = TrainConfig(
        objective=args.objective,
        negatives=args.negatives,
        temperature=args.temperature,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=[m for m in args.target_modules.split(",") if m],
        seed=args.seed,
        save_every=args.save_every,
        max_doc_tokens=args.max_doc_tokens,
        backend=args.backend,
        device=args.device,
        progress=not args.json,
    )
    cfg.check()
    examples = load_examples(args.data, need_negatives=args.mine_corpus is None)
    if args.mine_corpus:
        from mmrank.io import load_corpus
        from mmrank.retrieve.bm25 import BM25Retriever

        bm25 = BM25Retriever().index(load_corpus(args.mine_corpus))
        examples = mine_negatives(examples, bm25, k=args.mine_k)
    summary: dict[str, Any] = train(args.model, examples, args.out, cfg, resume=args.resume)
    losses = summary["losses"]
    text = (
        f"wrote {args.out}: {summary['steps']} steps of {args.objective} in {summary['seconds']:.1f}s, "
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; use it with: mmrank rerank --reranker "
        f"{'vlm-yes-no' if summary['backend'] == 'vlm' else 'yes-no'} --model {args.out}"
    )
    emit(args, {k: v for k, v in summary.items() if k != "config"}, text)
    return 0


def add_parsers(sub: Any) -> None:
    t = sub.add_parser("train", help="LoRA-train a yes/no reranker (SFT or contrastive)", description=__doc__)
    t.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    t.add_argument("--objective", required=True, choices=["sft", "contrastive"])
    t.add_argument("--model", required=True, help="hub id or local folder of a causal LM or VLM")
    t.add_argument("--data", required=True, type=Path, help="JSONL: query, positive(s), negatives")
    t.add_argument("--out", required=True, type=Path, help="output folder (adapter + checkpoints)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    t.add_argument("--negatives", type=positive_int, default=16, help="negatives per group (paper: 16)")
    t.add_argument("--temperature", type=float, default=1.0, help="InfoNCE temperature on z_yes (contrastive)")
    t.add_argument("--epochs", type=positive_int, default=1)
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (paper: 1e-4)")
    t.add_argument("--batch-size", type=positive_int, default=1, help="groups per micro-batch")
    t.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--lora-r", type=positive_int, default=16)
    t.add_argument("--lora-alpha", type=positive_int, default=32)
    t.add_argument("--lora-dropout", type=float, default=0.05)
    t.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj", help="comma-separated module names")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save-every", type=positive_int, default=50, help="checkpoint every N steps")
    t.add_argument("--max-doc-tokens", type=positive_int, default=256)
    t.add_argument("--backend", default="auto", choices=["auto", "text", "vlm"])
    t.add_argument("--device")
    t.add_argument("--mine-corpus", help="corpus (BEIR folder / corpus.jsonl) to mine BM25 hard negatives from")
    t.add_argument("--mine-k", type=positive_int, default=20, help="BM25 depth for mining")
    t.set_defaults(func=_cmd_train)
