"""CIR loaders: the real annotation files (counts from SOURCE.txt), the fixtures' layouts, wrong split or schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmrank.errors import DataFormatError, UnknownNameError
from mmrank.eval.cir import load_benchmark, load_circo, load_cirr, load_fashioniq
from tests.cir_fixtures import write_mini_circo, write_mini_cirr, write_mini_fashioniq


@pytest.fixture(scope="module")
def cir_data():
    """``../shared/data/cir`` beside the checkout (or under ``$MMRANK_SHARED_DATA``); skipped when absent."""
    from tests.conftest import SHARED_DATA

    root = Path(os.environ.get("MMRANK_SHARED_DATA", SHARED_DATA)) / "cir"
    if not root.is_dir():
        pytest.skip(f"{root} is not present")
    return root


def test_real_cirr(cir_data):
    val = load_cirr(cir_data, split="val")
    assert len(val.samples) == 4181 and len(val.gallery) == 2297
    s = val.samples[0]
    raw = json.loads((cir_data / "cirr/captions/cap.rc2.val.json").read_text())[0]
    assert (s.id, s.reference, s.target, s.text) == (
        str(raw["pairid"]),
        raw["reference"],
        raw["target_hard"],
        raw["caption"],
    )
    assert list(s.members) == raw["img_set"]["members"] and s.soft == raw["target_soft"]
    assert val.exclude_reference and val.has_labels
    q = val.query(s)
    assert q.composed and q.meta["exclude"] == [s.reference]
    test = load_cirr(cir_data, split="test")
    assert test.split == "test1" and len(test.samples) == 4148 and len(test.gallery) == 2315 and not test.has_labels


def test_real_circo(cir_data):
    val = load_circo(cir_data, split="val")
    assert len(val.samples) == 220 and sum(len(s.targets) for s in val.samples) == 916
    assert all(s.target in s.targets for s in val.samples) and not val.exclude_reference
    assert len(load_circo(cir_data, split="test").samples) == 800


def test_real_fashioniq(cir_data):
    val = load_benchmark("fashioniq", cir_data, split="val")
    assert [(b.category, len(b.samples), len(b.gallery)) for b in val] == [
        ("dress", 2017, 3817),
        ("shirt", 2038, 6346),
        ("toptee", 1961, 5373),
    ]
    s = val[0].samples[0]
    assert s.text == "Is shiny and silver with shorter sleeves and fit and flare"  # CLIP4Cir's caption join
    test = load_benchmark("fashioniq", cir_data, split="test")
    assert [len(b.samples) for b in test] == [2024, 2038, 2056] and not any(b.has_labels for b in test)


def test_fixture_layouts_resolve_images(tmp_path):
    cirr = load_cirr(write_mini_cirr(tmp_path / "cirr"), tmp_path / "cirr", "val")
    assert len(cirr.samples) == 4 and not cirr.missing_images()
    assert all(p.parent.name == "dev" and p.parent.parent.name == "img_raw" for p in cirr.gallery.values())
    circo = load_circo(write_mini_circo(tmp_path / "circo"), tmp_path / "circo", "val")
    assert len(circo.gallery) == 12 and not circo.missing_images()
    fiq = load_fashioniq(write_mini_fashioniq(tmp_path / "fiq"), tmp_path / "fiq", "val", "shirt")
    assert len(fiq.samples) == 2 and not fiq.missing_images()
    assert fiq.samples[0].text == "Is mirrored and faces the other way"


def _cirr_tree(tmp_path, records, split_names, split="val"):
    (tmp_path / "captions").mkdir(parents=True, exist_ok=True)
    (tmp_path / "image_splits").mkdir(parents=True, exist_ok=True)
    (tmp_path / "captions" / f"cap.rc2.{split}.json").write_text(json.dumps(records))
    (tmp_path / "image_splits" / f"split.rc2.{split}.json").write_text(
        json.dumps({n: f"./x/{n}.png" for n in split_names})
    )
    return tmp_path


def test_cirr_wrong_split_and_schema_name_the_record(tmp_path):
    good = {"pairid": 1, "reference": "dev-1-0-img0", "target_hard": "dev-2-0-img0", "target_soft": {}, "caption": "c",
            "img_set": {"members": ["dev-1-0-img0", "dev-2-0-img0"]}}  # fmt: skip
    names = ["dev-1-0-img0", "dev-2-0-img0", "test1-1-0-img0"]
    root = _cirr_tree(tmp_path / "a", [good, {**good, "pairid": 2, "reference": "test1-1-0-img0"}], names)
    with pytest.raises(DataFormatError, match=r"record 1 \(pairid 2\).*not a val image"):
        load_cirr(root, split="val")
    root = _cirr_tree(tmp_path / "b", [good, {k: v for k, v in good.items() if k != "target_hard"}], names)
    with pytest.raises(DataFormatError, match=r"record 1 .*missing \['target_hard'\]"):
        load_cirr(root, split="val")
    root = _cirr_tree(tmp_path / "c", [{**good, "target_hard": "dev-9-0-img0"}], names)
    with pytest.raises(DataFormatError, match=r"dev-9-0-img0.*not in split\.rc2\.val\.json"):
        load_cirr(root, split="val")
    root = _cirr_tree(tmp_path / "d", {"not": "a list"}, names)
    with pytest.raises(DataFormatError, match="list of triplets"):
        load_cirr(root, split="val")
    (root / "captions" / "cap.rc2.val.json").write_text("{broken")
    with pytest.raises(DataFormatError, match="cannot read JSON"):
        load_cirr(root, split="val")
    with pytest.raises(UnknownNameError, match="split"):
        load_cirr(root, split="train")
    with pytest.raises(DataFormatError, match="annotation file not found"):
        load_cirr(root, split="test1")


def test_circo_wrong_split_and_schema(tmp_path):
    root = write_mini_circo(tmp_path / "circo")
    val = json.loads((root / "annotations" / "val.json").read_text())
    (root / "annotations" / "test.json").write_text(json.dumps(val))  # val annotations passed as test
    with pytest.raises(DataFormatError, match=r"record 0 \(id 0\): has gt_img_ids"):
        load_circo(root, split="test")
    val[1]["id"] = 7
    (root / "annotations" / "val.json").write_text(json.dumps(val))
    with pytest.raises(DataFormatError, match=r"record 1: query ids must be 0\.\.n-1"):
        load_circo(root, split="val")
    del val[1]["gt_img_ids"]
    val[1]["id"] = 1
    (root / "annotations" / "val.json").write_text(json.dumps(val))
    with pytest.raises(DataFormatError, match=r"record 1 \(id 1\): missing \['gt_img_ids'\]"):
        load_circo(root, split="val")


def test_fashioniq_wrong_split_or_category(tmp_path):
    root = write_mini_fashioniq(tmp_path / "fiq")
    (root / "image_splits" / "split.dress.val.json").write_text(json.dumps(["B999"]))
    with pytest.raises(DataFormatError, match=r"record 0: candidate .* not in split\.dress\.val\.json"):
        load_fashioniq(root, split="val", category="dress")
    with pytest.raises(UnknownNameError, match="category"):
        load_fashioniq(root, split="val", category="shoes")
    trip = json.loads((root / "captions" / "cap.shirt.val.json").read_text())
    trip[1]["captions"] = "not a list"
    (root / "captions" / "cap.shirt.val.json").write_text(json.dumps(trip))
    with pytest.raises(DataFormatError, match="record 1: captions must be a list"):
        load_fashioniq(root, split="val", category="shirt")
