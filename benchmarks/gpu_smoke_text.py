"""CUDA smoke check of the text-reranker backends: tiny random models, CUDA (dtype auto = bf16) against CPU fp32.

    python benchmarks/gpu_smoke_text.py      # needs a CUDA device; prints one line per check, exits 1 on a failure

bf16 changes numbers, so scores are compared with a tolerance and by ranking agreement, not bit for bit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmrank.llm.causal import CausalLM  # noqa: E402
from mmrank.rerank.crossencoder import CrossEncoderReranker  # noqa: E402
from mmrank.rerank.e2rank import E2RankReranker  # noqa: E402
from mmrank.rerank.icr import ICRReranker  # noqa: E402
from mmrank.rerank.monot5 import MonoT5Reranker  # noqa: E402
from mmrank.rerank.pointwise import ProRankReranker, YesNoReranker  # noqa: E402
from tests.tiny_text import save_tiny_cross_encoder, save_tiny_qwen, save_tiny_t5  # noqa: E402

DOCS = ["The cat sat on the mat.", "Paris is the capital of France.", "Dogs bark at night.", "Machine learning"]
Q = "What is the capital of France?"
failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)
    if not ok:
        failures.append(name)


def close(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[bool, str]:
    d = float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max())
    return d <= tol, f"max|diff|={d:.3g}"


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    tmp = Path(tempfile.mkdtemp())
    qwen = str(save_tiny_qwen(tmp / "qwen", layers=3))
    gpu, cpu = CausalLM(qwen, device="cuda"), CausalLM(qwen, device="cpu")
    check("dtype auto is bf16 on CUDA", gpu.model.dtype == torch.bfloat16, str(gpu.model.dtype))
    prompts = [gpu.chat([{"role": "user", "content": d}]) for d in DOCS]
    lg, lc = gpu.next_token_logits(prompts), cpu.next_token_logits(prompts)
    check("next_token_logits bf16 vs fp32", *close(lg.numpy(), lc.numpy(), 0.1))
    pre = prompts[0][: prompts[0].index("user")]
    check("prefix KV reuse on CUDA", *close(gpu.next_token_logits(prompts, [pre] * 4).numpy(), lg.numpy(), 0.1))
    g = gpu.generate(prompts, max_new_tokens=6, temperature=0.7, seed=1)
    check("sampled generation deterministic", g == gpu.generate(prompts, max_new_tokens=6, temperature=0.7, seed=1))
    cl = [
        gpu.continuation_logprobs(prompts[:2], ["yes", "the cat"]),
        cpu.continuation_logprobs(prompts[:2], ["yes", "the cat"]),
    ]
    check("continuation_logprobs", *close(np.concatenate(cl[0]), np.concatenate(cl[1]), 0.1))
    for cls in (YesNoReranker, ProRankReranker):
        sg, _ = cls(lm=gpu).score_pairs([(_q(), _i(d)) for d in DOCS])
        sc, _ = cls(lm=cpu).score_pairs([(_q(), _i(d)) for d in DOCS])
        check(f"{cls.name} scores", *close(sg, sc, 0.1))
    ig, ic = ICRReranker(lm=gpu).score_docs(Q, DOCS), ICRReranker(lm=cpu).score_docs(Q, DOCS)
    check("icr scores (eager attention on CUDA)", *close(ig, ic, max(0.05, 0.1 * float(np.abs(ic).max()))))
    check("icr restores attention implementation", gpu.model.config._attn_implementation != "eager")
    eg = E2RankReranker(lm=gpu).rank(Q, DOCS)
    ec = E2RankReranker(lm=cpu).rank(Q, DOCS)
    check("e2rank scores", *close(sorted(eg.scores), sorted(ec.scores), 0.05))
    ce = str(save_tiny_cross_encoder(tmp / "ce"))
    check("cross-encoder on CUDA", len(CrossEncoderReranker(ce, device="cuda").rank(Q, DOCS).ids) == 4)
    t5 = str(save_tiny_t5(tmp / "t5"))
    check("monoT5 on CUDA", len(MonoT5Reranker(t5, device="cuda").rank(Q, DOCS).ids) == 4)
    print("FAILED: " + ", ".join(failures) if failures else "all CUDA checks passed")
    sys.exit(1 if failures else 0)


def _q():
    from mmrank.types import Query

    return Query("q", text=Q)


def _i(d: str):
    from mmrank.types import Item

    return Item("d", text=d)


if __name__ == "__main__":
    main()
