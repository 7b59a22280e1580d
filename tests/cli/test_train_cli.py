"""`mmrank train` then `mmrank rerank --model OUT` end to end: a tiny Qwen2 (yes-no) and a tiny Qwen2-VL
(vlm-yes-no) trained from JSONL, the adapter folder used at once; bad data exits 2 naming the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmrank.cli import main
from mmrank.io import read_trec_run
from tests.tiny_text import save_tiny_qwen
from tests.tiny_vlm import colour_image, save_tiny_qwen2_vl

torch.set_num_threads(1)
COLOURS = ["red", "green", "blue", "yellow"]


def _write(root: Path, image: bool) -> dict[str, Path]:
    items, recs = [], []
    for c in COLOURS:
        it: dict = {"id": f"d-{c}", "text": f"a {c} thing"}
        if image:
            colour_image(c, (32, 32)).save(root / f"{c}.png")
            it["image"] = str(root / f"{c}.png")
        items.append(it)
    for c in COLOURS:
        pos = next(i for i in items if i["id"] == f"d-{c}")
        recs.append({"id": c, "query": f"{c}", "positive": pos, "negatives": [i for i in items if i is not pos]})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (root / "queries.jsonl").write_text(json.dumps({"id": "q1", "text": "red"}) + "\n")
    (root / "first.run").write_text("".join(f"q1 Q0 {it['id']} {r + 1} {10 - r} bm25\n" for r, it in enumerate(items)))
    return {
        k: root / f
        for k, f in [
            ("data", "train.jsonl"),
            ("corpus", "items.jsonl"),
            ("queries", "queries.jsonl"),
            ("run", "first.run"),
        ]
    }


@pytest.mark.parametrize("kind", ["text", "vlm"])
def test_train_then_rerank_with_the_adapter_folder(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture) -> None:
    files = _write(tmp_path, image=kind == "vlm")
    model = save_tiny_qwen(tmp_path / "m") if kind == "text" else save_tiny_qwen2_vl(tmp_path / "m")
    out = tmp_path / "adapter"
    argv = ["train", "--objective", "contrastive", "--model", str(model), "--data", str(files["data"])]
    argv += ["--out", str(out), "--negatives", "2", "--lora-r", "4", "--max-steps", "3", "--lr", "1e-2", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["backend"] == kind and len(summary["losses"]) == 3
    assert (out / "adapter_config.json").is_file()
    reranker = "yes-no" if kind == "text" else "vlm-yes-no"
    for name, m in (("trained", out), ("base", model)):
        rc = main(
            [
                "rerank",
                "--candidates",
                str(files["run"]),
                "--corpus",
                str(files["corpus"]),
                "--queries",
                str(files["queries"]),
                "--reranker",
                reranker,
                "--model",
                str(m),
                "--option",
                "head=cl",
                "--out",
                str(tmp_path / f"{name}.run"),
                "--json",
            ]
        )
        assert rc == 0
    capsys.readouterr()
    trained, base = read_trec_run(tmp_path / "trained.run"), read_trec_run(tmp_path / "base.run")
    assert sorted(h.id for h in trained["q1"].hits) == sorted(f"d-{c}" for c in COLOURS)
    assert [h.score for h in trained["q1"].hits] != [h.score for h in base["q1"].hits]  # the adapter is applied


def test_bad_training_data_exits_2_naming_the_record(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"id": "q7", "query": "x", "positive": "a", "negatives": []}) + "\n")
    rc = main(
        [
            "train",
            "--objective",
            "sft",
            "--model",
            str(tmp_path / "none"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "record 1 (id 'q7')" in err and "no negatives" in err
