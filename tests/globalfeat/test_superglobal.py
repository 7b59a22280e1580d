import math

import pytest
import torch
import torchvision

from mmrank.globalfeat.superglobal import (
    ReLUPlus,
    SuperGlobalConfig,
    _ReLUPlusResBlock,
    apply_relu_plus,
    gem_plus,
    regional_gem,
    scale_gem,
)

torch.set_num_threads(1)


def naive_regional_gem(x, p=2.5, size=5, mix=0.5):
    """Loop reference: 5x5 local generalised mean with reflected borders, mixed with the input."""
    b, c, h, w = x.shape
    r = size // 2

    def refl(i, n):
        if i < 0:
            return -i
        if i >= n:
            return 2 * (n - 1) - i
        return i

    out = torch.empty_like(x)
    for bi in range(b):
        for ci in range(c):
            for i in range(h):
                for j in range(w):
                    acc = 0.0
                    for di in range(-r, r + 1):
                        for dj in range(-r, r + 1):
                            acc += float(x[bi, ci, refl(i + di, h), refl(j + dj, w)]) ** p
                    local = (acc / size**2) ** (1 / p)
                    out[bi, ci, i, j] = mix * local + (1 - mix) * float(x[bi, ci, i, j])
    return out


def test_regional_gem_matches_naive():
    x = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(1)) + 0.05
    torch.testing.assert_close(regional_gem(x), naive_regional_gem(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        regional_gem(x, p=3.0, size=3, mix=0.3), naive_regional_gem(x, 3.0, 3, 0.3), rtol=1e-5, atol=1e-5
    )


def test_gem_plus_is_gem_p46():
    x = torch.rand(2, 4, 3, 3) + 0.01
    expected = x.pow(4.6).mean(dim=(2, 3)).pow(1 / 4.6)
    torch.testing.assert_close(gem_plus(x), expected)


def test_scale_gem_matches_naive():
    g = torch.Generator().manual_seed(2)
    descs = [torch.rand(3, 5, generator=g) for _ in range(3)]
    out = scale_gem(descs)
    for b in range(3):
        for d in range(5):
            vals = []
            for s in descs:
                norm = math.sqrt(sum(float(v) ** 2 for v in s[b]))
                vals.append(float(s[b, d]) / norm)
            assert out[b, d].item() == pytest.approx(max(vals), rel=1e-6)
    # infinity=False: (mean_s (x - g)^p)^(1/p) + g with g the per-image minimum
    out2 = scale_gem(descs, infinity=False, p=10.0)
    for b in range(3):
        gmin = min(float(s[b].min()) for s in descs)
        for d in range(5):
            m = sum((float(s[b, d]) - gmin) ** 10 for s in descs) / 3
            assert out2[b, d].item() == pytest.approx(m**0.1 + gmin, rel=1e-5)


def test_relu_plus_clamps():
    x = torch.tensor([-1.0, 0.0, 0.01, 0.5, 7.0])
    assert ReLUPlus()(x).tolist() == pytest.approx([0.014, 0.014, 0.014, 0.5, 7.0])
    assert ReLUPlus(0.014, max=6.0)(x).tolist() == pytest.approx([0.014, 0.014, 0.014, 0.5, 6.0])


@pytest.mark.parametrize("block_cls", ["bottleneck", "basic"])
def test_relu_plus_block_with_alpha_zero_equals_torchvision_block(block_cls):
    from torchvision.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    if block_cls == "bottleneck":
        ds = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1, bias=False), torch.nn.BatchNorm2d(32))
        block = Bottleneck(16, 8, downsample=ds).eval()
    else:
        block = BasicBlock(16, 16).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(_ReLUPlusResBlock(block, 0.0, 0.0)(x), block(x))
        assert _ReLUPlusResBlock(block, 0.014, 0.0)(x).min().item() >= 0.014 - 1e-7


def test_apply_relu_plus_resnet_stages():
    m = torchvision.models.resnet50(weights=None).eval()
    desc = apply_relu_plus(m, "resnet50")
    assert "layer1-3" in desc
    assert all(isinstance(b, _ReLUPlusResBlock) for layer in (m.layer1, m.layer2, m.layer3) for b in layer)
    assert not any(isinstance(b, _ReLUPlusResBlock) for b in m.layer4)
    assert all(b.alpha_in == 0.014 for b in m.layer1) and all(b.alpha_in == 0.0 for b in m.layer2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        h = m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))
    assert h.min().item() >= 0.014 - 1e-7


def test_apply_relu_plus_mobilenet_and_unknown():
    m = torchvision.models.mobilenet_v2(weights=None)
    apply_relu_plus(m, "mobilenet_v2")
    inside = [mod for i in range(1, 14) for mod in m.features[i].modules() if isinstance(mod, ReLUPlus)]
    later = [mod for i in range(14, 19) for mod in m.features[i].modules() if isinstance(mod, torch.nn.ReLU6)]
    assert len(inside) == 25 and len(later) == 9  # block 1 has 1 activation, blocks 2-13 two each
    with pytest.raises(ValueError, match="ReLU\\+"):
        apply_relu_plus(torchvision.models.efficientnet_b0(weights=None), "efficientnet_b0")


def test_config_off_and_dict():
    c = SuperGlobalConfig.off(pooling="avg")
    assert not (c.relu_plus or c.rgem or c.gem_plus or c.sgem) and c.pooling == "avg"
    d = SuperGlobalConfig().as_dict()
    assert d["scales"] == [0.7071, 1.0, 1.4142] and d["gem_plus_p"] == 4.6 and d["rgem_p"] == 2.5
