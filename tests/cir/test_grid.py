"""EBR grid: layout within the VLM pixel budget, a mark on every cell, placeholders, the reference cell."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmrank.cir.grid import GridSpec, make_grid
from mmrank.errors import ImageLoadError
from tests.tiny_vision import skimage_photos


@pytest.fixture(scope="module")
def photos():
    return [Image.fromarray(a) for a in skimage_photos().values()]


@pytest.mark.parametrize(("n", "cols", "rows"), [(9, 3, 3), (16, 4, 4), (10, 4, 3), (2, 2, 1)])
def test_layout_fits_the_budget_and_the_patch_grid(n, cols, rows):
    spec = GridSpec()
    c, r, cell = spec.layout(n)
    w, h = spec.size(c, r, cell)
    assert (c, r) == (cols, rows)
    assert w * h <= spec.max_pixels and w % 28 == 0 and h % 28 == 0
    small = GridSpec(max_pixels=200 * 28 * 28)
    assert small.layout(n)[2] < cell and np.prod(small.size(*small.layout(n))) <= small.max_pixels


def _red(img, box):
    a = np.asarray(img.crop(box)).astype(int)
    return int(((a[..., 0] == 200) & (a[..., 1] == 20) & (a[..., 2] == 20)).sum())


def test_every_cell_gets_a_mark(photos, tmp_path):
    imgs = (photos * 4)[:9]
    spec = GridSpec()
    grid, bad = make_grid(imgs, spec, save=tmp_path / "g.png")
    cols, rows, cell = spec.layout(9)
    assert grid.size == spec.size(cols, rows, cell) and bad == []
    assert Image.open(tmp_path / "g.png").size == grid.size
    for i in range(9):
        x = spec.gap + (i % cols) * (cell + spec.gap)
        y = spec.gap + (i // cols) * (cell + spec.gap)
        mark = spec.mark_px(cell)
        assert _red(grid, (x, y, x + 3 * mark, y + 2 * mark)) > mark * mark // 4, f"no mark on cell {i + 1}"
        assert _red(grid, (x + cell // 2, y + cell // 2, x + cell, y + cell)) == 0  # marks stay in the corner


def test_unreadable_candidate_is_a_placeholder_and_reference_cell(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    grid, bad = make_grid([photos[0], broken, photos[1]], reference=photos[2])
    assert bad == [1]
    spec = GridSpec()
    cell = spec.layout(4)[2]
    a = np.asarray(grid).astype(int)
    x = y = spec.gap
    blue = (a[y : y + cell, x : x + 4, 0] == 20) & (a[y : y + cell, x : x + 4, 2] == 220)
    assert blue.mean() > 0.5  # the reference cell's border
    with pytest.raises(ImageLoadError):
        make_grid([photos[0]], reference=broken)
    with pytest.raises(ValueError):
        make_grid([])
