from __future__ import annotations

import numpy as np
import pytest

import mmrank
from mmrank.errors import IndexCorruptError
from mmrank.index import VectorIndex


def _unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


X = _unit(500, 16, 0)
Q = _unit(7, 16, 1)
IDS = [f"doc{i}" for i in range(len(X))]


def _naive_topk(q, x, k):
    s = q @ x.T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, axis=1), idx


@pytest.mark.parametrize(
    "name,kwargs", [("exact", {"backend": "torch"}), ("exact", {"backend": "faiss"}), ("faiss-flat", {})]
)
def test_exact_indexes_match_naive(name, kwargs):
    ix = mmrank.vector_index(name, **kwargs)
    ix.add(X[:200], IDS[:200])
    ix.add(X[200:], IDS[200:])  # incremental adds
    scores, ids = ix.search(Q, 10)
    ref_s, ref_i = _naive_topk(Q, X, 10)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-5, atol=1e-6)
    assert ids == [[IDS[j] for j in row] for row in ref_i]


@pytest.mark.parametrize("name,kwargs", [("faiss-ivf", {"nlist": 8, "nprobe": 8}), ("faiss-hnsw", {})])
def test_approximate_indexes_recall(name, kwargs):
    ix = mmrank.vector_index(name, **kwargs)
    ix.add(X, IDS)
    _, ids = ix.search(Q, 10)
    _, ref_i = _naive_topk(Q, X, 10)
    recall = np.mean([len(set(a) & {IDS[j] for j in b}) / 10 for a, b in zip(ids, ref_i, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("name", ["exact", "faiss-flat", "faiss-ivf", "faiss-hnsw"])
def test_save_load_round_trip(tmp_path, name):
    ix = mmrank.vector_index(name, model_id="m")
    ix.add(X, IDS)
    ix.save(tmp_path / "ix")
    back = VectorIndex.load(tmp_path / "ix")
    assert type(back) is type(ix) and back.model_id == "m" and len(back) == len(X) and back.dim == 16
    assert back.search(Q, 5)[1] == ix.search(Q, 5)[1]


def test_bad_adds_and_searches():
    ix = mmrank.vector_index("exact")
    with pytest.raises(ValueError, match="empty index"):
        ix.search(Q, 3)
    ix.add(X[:3], IDS[:3])
    with pytest.raises(ValueError, match="duplicate id"):
        ix.add(X[3:4], IDS[:1])
    with pytest.raises(ValueError, match="dimension"):
        ix.add(np.zeros((1, 4), np.float32), ["z"])
    with pytest.raises(ValueError, match="query dimension"):
        ix.search(np.zeros((1, 4), np.float32), 1)
    assert ix.search(Q, 10)[0].shape == (7, 3)  # k capped at the index size


def test_tampered_files_are_detected(tmp_path):
    ix = mmrank.vector_index("exact")
    ix.add(X, IDS)
    d = ix.save(tmp_path / "ix")
    vec = next(p for p in d.iterdir() if p.name.startswith("vectors-"))
    vec.write_bytes(vec.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(IndexCorruptError, match="checksum"):
        VectorIndex.load(d)
    with pytest.raises(IndexCorruptError, match="manifest"):
        VectorIndex.load(tmp_path / "nothing-here")
