"""Training a tiny Qwen2-VL (built from config) on a synthetic image task: the positive is the red picture,
the negatives other colours. Each objective lowers its loss and raises the positive's rank (issue 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmrank.llm.vlm import clear_vlm_cache
from mmrank.rerank.vlm_pointwise import VLMYesNoReranker
from mmrank.train import TrainConfig, parse_examples, train
from tests.tiny_vlm import colour_image, save_tiny_qwen2_vl

torch.set_num_threads(1)
OTHERS = ["green", "blue", "yellow", "white"]


@pytest.mark.parametrize("objective", ["sft", "contrastive"])
def test_vlm_learns_a_colour_task(tmp_path: Path, objective: str) -> None:
    model = save_tiny_qwen2_vl(tmp_path / "vl", hidden=64)
    recs = []
    for i, size in enumerate([(28, 28), (32, 28), (28, 36), (36, 32)]):
        red = tmp_path / f"red{i}.png"
        colour_image("red", size).save(red)
        negs = []
        for c in OTHERS:
            p = tmp_path / f"{c}{i}.png"
            colour_image(c, size).save(p)
            negs.append({"id": f"{c}{i}", "image": str(p)})
        recs.append(
            {
                "id": f"q{i}",
                "query": "a red picture",
                "positive": {"id": f"red{i}", "image": str(red)},
                "negatives": negs,
            }
        )
    ex = parse_examples(recs)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    c = TrainConfig(
        objective=objective,
        negatives=3,
        epochs=6,
        lr=1e-2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=modules,
        save_every=100,
        progress=False,
        backend="vlm",
    )
    out = train(str(model), ex, tmp_path / "out", c)
    losses = out["losses"]
    assert out["backend"] == "vlm"
    assert np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4])

    def mrr(path: str) -> float:
        clear_vlm_cache()
        rr = VLMYesNoReranker(path, head="sft" if objective == "sft" else "cl", device="cpu")
        got = []
        for e in ex:
            s, _ = rr.score_pairs([(e.query, d) for d in [*e.positives, *e.negatives]])
            got.append(1.0 / (1 + int((s[1:] >= s[0]).sum())))
        return float(np.mean(got))

    assert mrr(str(tmp_path / "out")) > mrr(str(model))
