from __future__ import annotations

import numpy as np
import pytest

from mmrank.errors import IndexCorruptError
from mmrank.index.cache import EmbeddingCache, content_key


def test_cache_round_trip(tmp_path):
    c = EmbeddingCache(tmp_path / "c", "model-a")
    c.put_many(["k1", "k2"], np.array([[1, 0], [0, 1]], np.float32))
    c.put_many(["k3", "k1"], np.array([[1, 1], [9, 9]], np.float32))  # k1 already cached: kept
    mask, vecs = c.get_many(["k3", "zz", "k1"])
    assert mask.tolist() == [True, False, True]
    np.testing.assert_array_equal(vecs, [[1, 1], [1, 0]])
    c.save()
    again = EmbeddingCache(tmp_path / "c", "model-a")
    assert len(again) == 3
    np.testing.assert_array_equal(again.get_many(["k2"])[1], [[0, 1]])
    with pytest.raises(IndexCorruptError, match="model-a"):
        EmbeddingCache(tmp_path / "c", "model-b")


def test_content_key_is_by_bytes(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert content_key(a) == content_key(b) == content_key(b"same")
    b.write_bytes(b"other")
    assert content_key(a) != content_key(b)
