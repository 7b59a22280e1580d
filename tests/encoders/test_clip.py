import os

import numpy as np
import pytest
import torch

from mmrank import registry
from mmrank.encoders.clip import HFCLIPEncoder, OpenCLIPEncoder
from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.types import Item, Query
from tests.tiny_vision import register_tiny_open_clip, save_tiny_hf_clip, write_odd_images, write_photos

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"), size=48)


@pytest.fixture(scope="module")
def open_clip_enc(tmp_path_factory):
    torch.manual_seed(0)
    name = register_tiny_open_clip(tmp_path_factory.mktemp("cfg"))
    return OpenCLIPEncoder(name, device="cpu", batch_size=3)


@pytest.fixture(scope="module", params=["clip", "siglip"])
def hf_enc(request, tmp_path_factory):
    d = save_tiny_hf_clip(tmp_path_factory.mktemp(request.param), siglip=request.param == "siglip")
    return HFCLIPEncoder(str(d), device="cpu", batch_size=3)


def _check_unit(x, n, d):
    assert x.shape == (n, d) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-5)


def test_open_clip_encodes_images_and_texts(open_clip_enc, photos):
    enc = open_clip_enc
    res = enc.encode_images(photos)
    _check_unit(res.vectors, len(photos), 16)
    assert res.ok.all() and res.warnings == []
    t = enc.encode_texts(["a cat", "a cup of coffee"])
    _check_unit(t, 2, 16)
    # the batched path equals one image at a time through the same model
    single = np.concatenate([enc.encode_images([p]).vectors for p in photos[:3]])
    np.testing.assert_allclose(res.vectors[:3], single, rtol=1e-4, atol=1e-5)
    # text->image, image->image and image->text all live in one space
    q = enc.encode_queries([Query("t", text="a cat"), Query("i", image=photos[0])])
    np.testing.assert_allclose(q[0], t[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q[1], res.vectors[0], rtol=1e-5, atol=1e-6)
    items = enc.encode_items([Item("img", image=photos[2]), Item("txt", text="a cup of coffee")])
    np.testing.assert_allclose(items[1], t[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataFormatError, match="composed"):
        enc.encode_queries([Query("c", text="but red", image=photos[0])])


def test_open_clip_save_load_round_trip(open_clip_enc, photos, tmp_path):
    d = open_clip_enc.save(tmp_path / "saved")
    again = OpenCLIPEncoder(str(d), device="cpu")
    np.testing.assert_allclose(
        again.encode_images(photos[:2]).vectors, open_clip_enc.encode_images(photos[:2]).vectors, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        again.encode_texts(["rocket"]), open_clip_enc.encode_texts(["rocket"]), rtol=1e-5, atol=1e-6
    )
    via_registry = registry.encoder("open-clip", model=str(d), device="cpu")
    assert via_registry.dim == 16
    # model name + local checkpoint file as ``pretrained`` (open_clip's own loading path)
    by_file = OpenCLIPEncoder(open_clip_enc.spec()["model"], str(d / "open_clip_model.safetensors"), device="cpu")
    np.testing.assert_allclose(
        by_file.encode_texts(["rocket"]), open_clip_enc.encode_texts(["rocket"]), rtol=1e-5, atol=1e-6
    )


def test_open_clip_dataloader_workers(open_clip_enc, photos):
    open_clip_enc.num_workers = 1
    try:
        res = open_clip_enc.encode_images(photos[:4])
    finally:
        open_clip_enc.num_workers = None
    np.testing.assert_allclose(res.vectors, open_clip_enc.encode_images(photos[:4]).vectors, rtol=1e-5, atol=1e-6)


def test_hf_encoders_and_round_trip(hf_enc, photos, tmp_path):
    res = hf_enc.encode_images(photos)
    d = hf_enc.dim
    _check_unit(res.vectors, len(photos), d)
    t = hf_enc.encode_texts(["a cat", "coffee"])
    _check_unit(t, 2, d)
    assert not np.allclose(t[0], t[1])
    saved = hf_enc.save(tmp_path / "hf")
    again = registry.encoder("hf-clip", model=str(saved), device="cpu")
    np.testing.assert_allclose(again.encode_images(photos[:2]).vectors, res.vectors[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.encode_texts(["a cat"]), t[:1], rtol=1e-5, atol=1e-6)


def test_bad_images_skip_or_raise(open_clip_enc, tmp_path):
    odd = write_odd_images(tmp_path / "odd")
    res = open_clip_enc.encode_images([odd["alpha"], odd["corrupt"], odd["palette"], odd["empty"]])
    assert res.ok.tolist() == [True, False, True, False]
    assert len(res.warnings) == 2 and "corrupt.png" in res.warnings[0] and "empty.jpg" in res.warnings[1]
    with pytest.raises(ImageLoadError, match=r"corrupt\.png"):
        open_clip_enc.encode_queries([Query("q", image=odd["corrupt"])])
