"""Issue 12, items 1 and 2 for folder indexes: one commit point for the index and its manifest, no write into a
foreign folder, and an embedding cache keyed by the *content* of the weights (overwrite a checkpoint, re-index:
new vectors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrank.encoders.cnn import CNNEncoder
from mmrank.errors import DataFormatError, TargetNotEmptyError
from mmrank.index import VectorIndex
from mmrank.vision import ImageSearch, index_folder
from tests.tiny_vision import write_photos

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return root, write_photos(root, size=48)


def _save_weights(path: Path, seed: int | None) -> Path:
    """Random MobileNetV2 weights (``seed``) or, with ``seed=None``, the real ImageNet ones."""
    import torchvision

    if seed is None:
        from mmrank.encoders.cnn import offline_mobilenet_v2_weights

        path.write_bytes(offline_mobilenet_v2_weights().read_bytes())
        return path
    torch.manual_seed(seed)
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    return path


def _cnn(weights: Path) -> CNNEncoder:
    return CNNEncoder("mobilenet_v2", str(weights), pooling="gem", image_size=48, device="cpu", batch_size=8)


def test_overwritten_checkpoint_is_reencoded_not_served_from_cache(photos, tmp_path):
    root, files = photos
    w = _save_weights(tmp_path / "weights.pt", seed=0)
    out = tmp_path / "idx"
    first = index_folder(root, out, encoder=_cnn(w))
    assert first.n_encoded == len(files)
    _save_weights(w, seed=None)  # same path, new content: the real ImageNet weights
    enc = _cnn(w)
    again = index_folder(root, out, encoder=enc)
    assert again.n_from_cache == 0 and again.n_encoded == len(files)
    assert any("re-encoding" in n for n in again.notes)
    engine = ImageSearch(out, encoder=enc)
    fresh = enc.encode_images(files).vectors
    ids = [p.name for p in files]
    stored = engine.index.vectors[[engine.index.ids.index(i) for i in ids]]
    np.testing.assert_allclose(stored, fresh, atol=1e-5)
    for p in files:  # every self-query finds itself first
        assert engine.search(str(p), k=1).hits[0].id == p.name
    # a cache for the current weights is reused
    assert index_folder(root, out, encoder=_cnn(w)).n_from_cache == len(files)


def test_search_refuses_an_index_built_with_other_weights(photos, tmp_path):
    root, _files = photos
    w = _save_weights(tmp_path / "weights.pt", seed=0)
    index_folder(root, tmp_path / "idx", encoder=_cnn(w))
    _save_weights(w, seed=2)
    with pytest.raises(DataFormatError, match=r"weights .* changed"):
        ImageSearch(tmp_path / "idx")  # rebuilds the encoder from the manifest: same path, new content


def test_index_folder_refuses_a_foreign_out_folder(photos, tmp_path):
    root, _ = photos
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.json").write_text("{}")
    enc = CNNEncoder("resnet18", None, pooling="gem", image_size=48, device="cpu")
    with pytest.raises(TargetNotEmptyError):
        index_folder(root, out, encoder=enc)
    assert sorted(p.name for p in out.iterdir()) == [".mmrank.lock", "thesis.json"]
    index_folder(root, out, encoder=enc, overwrite=True)
    assert (out / "thesis.json").read_text() == "{}"


DIE_AT_PUBLISH = textwrap.dedent(
    """
    import os, sys
    from mmrank.encoders.cnn import CNNEncoder
    from mmrank.vision import index_folder
    root, out, pooling = sys.argv[1], sys.argv[2], sys.argv[3]
    real = os.replace
    def dying(src, dst):
        if str(dst).endswith("mmrank_vision.json"):
            os._exit(9)  # the new index sub-folder is complete; the manifest is not yet published
        return real(src, dst)
    os.replace = dying
    index_folder(root, out, encoder=CNNEncoder("resnet18", None, pooling=pooling, image_size=48, device="cpu"))
    """
)


def test_killed_reindex_leaves_the_previous_index_and_manifest_together(photos, tmp_path):
    root, files = photos
    out = tmp_path / "idx"
    index_folder(root, out, encoder=CNNEncoder("resnet18", None, pooling="gem", image_size=48, device="cpu"))
    before = json.loads((out / "mmrank_vision.json").read_text())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", DIE_AT_PUBLISH, str(root), str(out), "avg"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 9, proc.stderr
    assert json.loads((out / "mmrank_vision.json").read_text()) == before
    engine = ImageSearch(out)  # the manifest's encoder matches the index it names
    assert engine.encoder.spec()["pooling"] == "gem" and len(engine.index) == len(files)
    assert engine.search(str(files[0]), k=1).hits[0].id == files[0].name
    # the next run removes the orphaned sub-folder of the killed one
    index_folder(root, out, encoder=CNNEncoder("resnet18", None, pooling="avg", image_size=48, device="cpu"))
    subs = [p.name for p in out.iterdir() if p.name.startswith("index")]
    assert len(subs) == 1 and isinstance(VectorIndex.load(out / subs[0]), VectorIndex)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("index")) == [
        ".mmrank.lock",
        "cache",
        "mmrank_vision.json",
    ]
