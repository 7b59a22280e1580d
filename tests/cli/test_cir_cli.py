"""``mmrank bench cir`` end to end on miniature benchmark trees with a tiny CLIP saved to disk."""

from __future__ import annotations

import json

import pytest
import torch

from mmrank.cli import main
from tests.cir_fixtures import write_mini_cirr, write_mini_fashioniq


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from mmrank.encoders.clip import OpenCLIPEncoder
    from tests.tiny_vision import register_tiny_open_clip

    torch.manual_seed(0)
    enc = OpenCLIPEncoder(register_tiny_open_clip(tmp_path_factory.mktemp("cfg")), device="cpu")
    return str(enc.save(tmp_path_factory.mktemp("clip")))


def _run(capsys, *args):
    code = main(["bench", "cir", *args, "--json"])
    return code, (json.loads(capsys.readouterr().out) if code == 0 else None)


def test_cirr_val_and_test(tmp_path, clip_dir, capsys):
    root = write_mini_cirr(tmp_path / "cirr")
    out = tmp_path / "runs"
    code, res = _run(capsys, "--dataset", "cirr", "--images", str(root), "--model", clip_dir, "--out", str(out))
    assert code == 0 and res["evaluated"] == 4 and {"R@1", "Rsubset@1", "avg"} <= set(res["metrics"])
    assert res["config"]["method"] == "cir-sum" and res["config"]["alpha"] == 0.65
    code, again = _run(capsys, "--dataset", "cirr", "--images", str(root), "--model", clip_dir, "--out", str(out))
    assert again["metrics"] == res["metrics"]  # resumed from the checkpoint
    code, test = _run(
        capsys, "--dataset", "cirr", "--split", "test", "--images", str(root), "--model", clip_dir, "--out", str(out)
    )
    assert code == 0 and len(test["submission"]["written"]) == 2


def test_fashioniq_and_bad_input(tmp_path, clip_dir, capsys):
    root = write_mini_fashioniq(tmp_path / "fiq")
    code, res = _run(
        capsys, "--dataset", "fashioniq", "--images", str(root), "--model", clip_dir, "--method", "cir-image",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 0 and set(res["metrics"]["avg"]) == {"R@10", "R@50"}
    code, _ = _run(capsys, "--dataset", "cirr", "--images", str(tmp_path / "nowhere"), "--model", clip_dir)
    assert code == 2 and "no cirr annotations" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="needs --vlm"):
        main(["bench", "cir", "--dataset", "cirr", "--images", str(root), "--method", "sqaf", "--model", clip_dir])
