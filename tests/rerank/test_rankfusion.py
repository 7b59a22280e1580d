"""Rank fusion of several rerankers equals fuse_runs over their separate runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank import registry
from mmrank.fusion import fuse_runs
from mmrank.rerank.rankfusion import RankFusionReranker
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_cross_encoder, save_tiny_qwen

torch.set_num_threads(1)

DOCS = ["The cat sat on the mat.", "Paris is the capital of France.", "Dogs bark at night.", "Machine learning ranks"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return (
        str(save_tiny_qwen(tmp_path_factory.mktemp("qwen"))),
        str(save_tiny_cross_encoder(tmp_path_factory.mktemp("ce"))),
    )


def make() -> tuple[list[Query], Run]:
    qs = [Query("a", text="capital of France"), Query("b", text="dogs at night")]
    run = Run([Ranking(q.id, [Hit(f"d{i}", 4.0 - i, Item(f"d{i}", text=d)) for i, d in enumerate(DOCS)]) for q in qs])
    return qs, run


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_fusion_reranker_equals_fuse_runs(paths, method):
    qwen, ce = paths
    qs, run = make()
    a = registry.reranker("yes-no", model=qwen, device="cpu")
    b = registry.reranker("cross-encoder", model=ce, device="cpu")
    fused = RankFusionReranker([a, ("cross-encoder", {"model": ce, "device": "cpu"})], method=method).rerank(qs, run)
    ref = fuse_runs([a.rerank(qs, run), b.rerank(qs, run)], method=method, how="minmax")
    first = {h.id: i for i, h in enumerate(run["a"].hits)}
    for q in qs:
        want = {h.id: h.score for h in ref[q.id].hits}
        # the same fused scores; ties (frequent with RRF) broken by first-stage rank, the base-class rule
        assert {h.id: h.score for h in fused[q.id].hits} == pytest.approx(want)
        assert fused[q.id].ids == sorted(want, key=lambda d: (-want[d], first[d]))
        assert fused[q.id].model_calls >= 2
    assert fused["a"].stage == "fusion(yes-no+cross-encoder)"


def test_fusion_validation(paths):
    with pytest.raises(ValueError):
        RankFusionReranker([])
    with pytest.raises(ValueError):
        RankFusionReranker([("cross-encoder", {"model": paths[1]})], weights=[0.5, 0.5])
