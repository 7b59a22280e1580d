from __future__ import annotations

import numpy as np
import pytest

from mmrank.fusion import fuse_runs, interpolate, normalise, rrf
from mmrank.types import Hit, Ranking, Run


def test_normalise_formulas():
    s = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(normalise(s, "minmax"), [0, 0.5, 1])
    np.testing.assert_allclose(normalise(s, "zscore"), [-1.224744871, 0, 1.224744871])
    np.testing.assert_allclose(normalise([2.0, 2.0], "zscore"), [0, 0])
    with pytest.raises(ValueError):
        normalise(s, "bogus")  # type: ignore[arg-type]


def test_interpolate_weight():
    out = interpolate([0.0, 1.0], [1.0, 0.0], 0.8, "minmax")
    np.testing.assert_allclose(out, [0.2, 0.8])
    with pytest.raises(ValueError):
        interpolate([1.0], [1.0], 1.5)


def test_rrf_hand_worked():
    a = Ranking("q", [Hit("x", 9), Hit("y", 8), Hit("z", 7)])
    b = Ranking("q", [Hit("y", 1), Hit("z", 0.5)])
    hits = rrf([a, b], k=60)
    expected = {"x": 1 / 61, "y": 1 / 62 + 1 / 61, "z": 1 / 63 + 1 / 62}
    assert [h.id for h in hits] == ["y", "z", "x"]
    for h in hits:
        assert h.score == pytest.approx(expected[h.id])


def test_fuse_runs_weighted():
    r1 = Run([Ranking("q", [Hit("x", 10), Hit("y", 0)])])
    r2 = Run([Ranking("q", [Hit("y", 5), Hit("x", 4), Hit("w", 3)])])
    fused = fuse_runs([r1, r2], "weighted", weights=[0.5, 0.5])
    # minmax: r1 x=1,y=0; r2 y=1,x=0.5,w=0 -> x=0.75, y=0.5, w=0
    assert fused["q"].ids == ["x", "y", "w"]
    assert fused["q"].scores == pytest.approx([0.75, 0.5, 0.0])


def test_nan_scores_get_the_floor_and_keep_the_first_stage():
    """Issue 12 item 6: one NaN reranker score used to turn the whole fused list into NaN."""
    z = normalise([np.nan, 1.0, 3.0], "zscore")
    np.testing.assert_allclose(z, [-1.0, -1.0, 1.0])  # finite stats: 1 -> -1, 3 -> +1; NaN -> the floor
    fused = interpolate([np.nan, 1.0, 3.0], [30.0, 20.0, 10.0], 0.5, "zscore")
    first = normalise([30.0, 20.0, 10.0], "zscore")
    np.testing.assert_allclose(fused, 0.5 * np.array([-1.0, -1.0, 1.0]) + 0.5 * first)
    assert np.isfinite(fused).all() and fused[0] > fused[1]  # the first stage still separates the two floors
    np.testing.assert_allclose(normalise([np.inf, 0.0, 2.0, -np.inf], "minmax"), [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(normalise([np.nan, np.nan], "zscore"), [0.0, 0.0])
