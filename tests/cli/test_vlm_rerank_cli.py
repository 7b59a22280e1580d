"""`mmrank rerank --reranker mm-r5 | vlm-yes-no --model DIR` end to end over an image corpus, with a tiny Qwen2-VL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.cli import main
from mmrank.io import read_trec_run
from tests.tiny_vlm import colour_image, save_tiny_qwen2_vl

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def image_collection(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    items = []
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        colour_image(colour, (40 + 5 * i, 32)).save(root / f"{colour}.png")
        items.append({"id": f"img-{colour}", "image": f"{colour}.png", "text": f"a {colour} picture"})
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    items.append({"id": "img-broken", "image": "broken.png"})
    corpus = root / "items.jsonl"
    corpus.write_text("".join(json.dumps(it) + "\n" for it in items))
    queries = root / "queries.jsonl"
    queries.write_text(json.dumps({"id": "q1", "text": "a red picture"}) + "\n")
    run = root / "first.run"
    run.write_text("".join(f"q1 Q0 {it['id']} {r + 1} {10 - r} bm25\n" for r, it in enumerate(items)))
    return {"corpus": corpus, "queries": queries, "run": run, "model": save_tiny_qwen2_vl(root / "tiny-qwen2-vl")}


@pytest.mark.parametrize(
    ("reranker", "options"),
    [("mm-r5", ["max_new_tokens=8", "device=cpu"]), ("vlm-yes-no", ["head=cl", "device=cpu"])],
)
def test_rerank_cli_with_a_tiny_vlm(image_collection, tmp_path, capsys, reranker, options):
    c = image_collection
    out = tmp_path / f"{reranker}.run"
    argv = ["rerank", "--candidates", str(c["run"]), "--corpus", str(c["corpus"]), "--queries", str(c["queries"])]
    argv += ["--reranker", reranker, "--model", str(c["model"]), "--out", str(out), "--json"]
    for o in options:
        argv += ["--option", o]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["stages"] == [reranker] and info["model_calls"] >= 1 and info["queries"] == 1
    fallbacks = " ".join(info["fallbacks"])
    assert "failed to load" in fallbacks  # the broken image is recorded, not fatal
    ranked = read_trec_run(out)["q1"].ids
    assert sorted(ranked) == sorted(["img-red", "img-green", "img-blue", "img-yellow", "img-broken"])
    assert ranked[-1] == "img-broken"


def test_missing_model_fails_cleanly(image_collection, tmp_path, capsys):
    c = image_collection
    argv = ["rerank", "--candidates", str(c["run"]), "--corpus", str(c["corpus"]), "--queries", str(c["queries"])]
    argv += ["--reranker", "mm-r5", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "local folder" in err
