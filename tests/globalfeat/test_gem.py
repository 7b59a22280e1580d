import pytest
import torch

from mmrank.globalfeat.gem import GeM, avg_pool, gem, max_pool

torch.set_num_threads(1)


@pytest.fixture
def fmap() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 8, 7, 7, generator=g) * 0.9 + 0.1


def test_gem_p1_is_average_pooling(fmap):
    torch.testing.assert_close(gem(fmap, 1.0), fmap.mean(dim=(2, 3)))
    torch.testing.assert_close(avg_pool(fmap), fmap.mean(dim=(2, 3)))


def test_gem_large_p_approaches_max(fmap):
    mx = max_pool(fmap)
    torch.testing.assert_close(mx, fmap.flatten(2).max(-1).values)
    prev_gap = None
    for p in (3.0, 10.0, 50.0, 200.0):
        g = gem(fmap, p)
        assert torch.all(g <= mx + 1e-6)
        gap = (mx - g).abs().max().item()
        if prev_gap is not None:
            assert gap < prev_gap  # monotone in p
        prev_gap = gap
    # (1/49)^(1/200) * max <= gem_200 <= max
    assert torch.all(gem(fmap, 200.0) >= mx * 49 ** (-1 / 200) - 1e-6)


def test_gem_formula_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = ((1 + 8 + 27 + 64) / 4) ** (1 / 3)
    assert gem(x, 3.0).item() == pytest.approx(expected, rel=1e-6)


def test_gem_module_fixed_and_learnable(fmap):
    fixed = GeM(3.0)
    assert not any(p.requires_grad for p in fixed.parameters())
    torch.testing.assert_close(fixed(fmap), gem(fmap, 3.0))
    learn = GeM(3.0, learnable=True)
    out = learn(fmap).sum()
    out.backward()
    assert learn.p.grad is not None and learn.p.grad.abs().item() > 0
    with pytest.raises(ValueError):
        GeM(0.0)
