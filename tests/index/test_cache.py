from __future__ import annotations

import os
from pathlib import Path

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


def test_content_key_keys_by_what_the_item_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat").write_bytes(b"\x89PNG not really")
    assert content_key("cat") != content_key(Path("cat"))  # a str is text even when a file of that name exists
    assert content_key("cat") == content_key("cat") and content_key("cat").startswith("text:")
    assert content_key(Path("cat")) == content_key(b"\x89PNG not really")  # a Path is its file's bytes
    with pytest.raises(TypeError):
        content_key(3)  # type: ignore[arg-type]


def test_weights_fingerprint_follows_content_not_path(tmp_path):
    from mmrank.index.fingerprint import settings_fingerprint

    w = tmp_path / "w.bin"
    w.write_bytes(b"A" * 1000)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    a = settings_fingerprint({"weights": str(w), "model": str(folder), "p": 3})
    assert a == settings_fingerprint({"weights": str(w), "model": str(folder), "p": 3})
    w.write_bytes(b"B" * 1000)  # same size; the memo is keyed by mtime too
    os.utime(w, ns=(1, 1))
    b = settings_fingerprint({"weights": str(w), "model": str(folder), "p": 3})
    assert a != b
    (folder / "config.json").write_text('{"x": 1}')
    assert b != settings_fingerprint({"weights": str(w), "model": str(folder), "p": 3})
    copy = tmp_path / "copy.bin"
    copy.write_bytes(w.read_bytes())  # another path with the same content: same fingerprint
    assert settings_fingerprint({"weights": str(copy)}) == settings_fingerprint({"weights": str(w)})


def test_dense_cache_is_rebuilt_when_the_local_model_changes(tmp_path):
    from mmrank.index.fingerprint import encoder_cache_id

    class Enc:
        model_id, dim = "local-model", 2

        def __init__(self, path):
            self.model_path = path

    model = tmp_path / "m.bin"
    model.write_bytes(b"one")
    first = encoder_cache_id(Enc(str(model)))
    model.write_bytes(b"two!")
    assert encoder_cache_id(Enc(str(model))) != first
    c = EmbeddingCache(tmp_path / "c", first)
    c.put_many(["k"], np.ones((1, 2), np.float32))
    c.save()
    fresh = EmbeddingCache(tmp_path / "c", encoder_cache_id(Enc(str(model))), on_mismatch="reset")
    assert len(fresh) == 0 and fresh.reset_from == first
