import numpy as np
import pytest
import torch

from mmrank import registry
from mmrank.errors import DataFormatError
from mmrank.globalfeat.rerank import (
    SuperGlobalReranker,
    refine_lists,
    refine_rerank,
    refine_topm,
    refine_topm_naive,
    shared_gram,
)
from mmrank.types import Hit, Item, Query, Ranking, Run

torch.set_num_threads(1)


def naive_superglobal(q, xs, K=9, beta=0.15):
    """Direct transcription of the paper's steps for one query and its top-M list (python loops)."""
    m = len(xs)
    k1 = min(K + 1, m)
    refined = []
    for i in range(m):
        sims = [(float(np.dot(xs[i], xs[j])), j) for j in range(m)]
        sims.sort(key=lambda t: -t[0])
        nbrs = sims[:k1]
        num = np.zeros_like(xs[0], dtype=np.float64)
        den = 0.0
        for rank, (s, j) in enumerate(nbrs):
            w = 1.0 if rank == 0 else beta * s
            num += w * xs[j]
            den += w
        refined.append(num / den)
    s1 = [float(np.dot(q, r)) for r in refined]
    top = sorted(range(m), key=lambda i: -s1[i])[:k1]
    q2 = np.max(np.stack([refined[i] for i in top]), axis=0)
    return np.array([(s1[i] + float(np.dot(q2, refined[i]))) / 2 for i in range(m)])


def _unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_refine_topm_matches_naive():
    rng = np.random.default_rng(0)
    q = _unit(rng, 3, 8)
    xt = np.stack([_unit(rng, 15, 8) for _ in range(3)])
    got = refine_topm(torch.from_numpy(q), torch.from_numpy(xt), K=4, beta=0.15).numpy()
    for b in range(3):
        np.testing.assert_allclose(got[b], naive_superglobal(q[b], xt[b], K=4), rtol=1e-5, atol=1e-6)
    # K + 1 larger than M is capped
    got = refine_topm(torch.from_numpy(q[:1]), torch.from_numpy(xt[:1, :5]), K=9).numpy()
    np.testing.assert_allclose(got[0], naive_superglobal(q[0], xt[0, :5], K=9), rtol=1e-5, atol=1e-6)


def test_refine_rerank_head_and_tail():
    rng = np.random.default_rng(1)
    x = _unit(rng, 30, 6)
    q = _unit(rng, 4, 6)
    scores, ranks = refine_rerank(q, x, M=10, K=3, beta=0.15, query_block=3)
    assert ranks.shape == (4, 30)
    for i in range(4):
        first = np.argsort(-(x @ q[i]), kind="stable")
        assert sorted(ranks[i]) == list(range(30))
        assert set(ranks[i, :10]) == set(first[:10])
        assert list(ranks[i, 10:]) == list(first[10:])  # beyond M: first-stage order
        expected = naive_superglobal(q[i], x[first[:10]], K=3)
        np.testing.assert_allclose(scores[i, :10], np.sort(expected)[::-1], rtol=1e-5, atol=1e-6)
        assert scores[i, 9] > scores[i, 10]
        assert np.all(np.diff(scores[i]) <= 1e-7)


def test_refine_rerank_leave_one_out_caps_m():
    rng = np.random.default_rng(2)
    x = _unit(rng, 12, 5)
    _scores, ranks = refine_rerank(x, x, M=400, exclude=np.arange(12))
    assert ranks.shape == (12, 11)
    for i in range(12):
        assert i not in ranks[i]


def _run(q, hits):
    return Run([Ranking(q.id, hits, query=q)])


def test_reranker_contract_uses_cached_vectors():
    rng = np.random.default_rng(3)
    x = _unit(rng, 8, 6)
    qv = _unit(rng, 1, 6)[0]
    q = Query("q", text="anything", meta={"vector": qv})
    first = np.argsort(-(x @ qv), kind="stable")
    hits = [Hit(f"d{j}", float(x[j] @ qv), Item(f"d{j}", text="t")) for j in first]
    rr = registry.reranker("superglobal-rerank", vectors={f"d{j}": x[j] for j in range(8)}, M=5, K=2)
    assert isinstance(rr, SuperGlobalReranker)
    out = rr.rerank(None, _run(q, hits))["q"]
    head = naive_superglobal(qv, x[first[:5]], K=2)
    assert out.ids[:5] == [f"d{first[i]}" for i in np.argsort(-head, kind="stable")]
    assert out.ids[5:] == [f"d{j}" for j in first[5:]]
    assert out.stage == "superglobal-rerank"


def test_reranker_meta_vectors_and_missing():
    rng = np.random.default_rng(4)
    x = _unit(rng, 4, 3)
    q = Query("q", text="x", meta={"vector": x[0]})
    hits = [Hit(f"d{j}", 1.0 - j, Item(f"d{j}", text="t", meta={"vector": x[j]})) for j in range(4)]
    out = SuperGlobalReranker(K=1).rerank(None, _run(q, hits))["q"]
    expected = naive_superglobal(x[0], x, K=1)  # vectors from item.meta, scored as the paper's steps
    assert out.ids == [f"d{j}" for j in np.argsort(-expected, kind="stable")]
    np.testing.assert_allclose([h.score for h in out.hits], np.sort(expected)[::-1], rtol=1e-5, atol=1e-6)
    hits[2] = Hit("d2", 0.5, Item("d2", text="t"))
    with pytest.raises(DataFormatError, match="no cached vector"):
        SuperGlobalReranker().rerank(None, _run(q, hits))


@pytest.mark.parametrize(("m", "k"), [(40, 9), (7, 9), (25, 0)])
def test_sparse_refinement_equals_the_papers_steps(m, k):
    """The weight-matrix form (no (M, K+1, d) gather) gives the paper's per-step scores, at the benchmark's d."""
    rng = np.random.default_rng(m + k)
    q = _unit(rng, 2, 1280)
    xt = np.stack([_unit(rng, m, 1280) for _ in range(2)])
    got = refine_topm(torch.from_numpy(q), torch.from_numpy(xt), K=k, beta=0.15).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], refine_topm_naive(q[b], xt[b], K=k), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[b], naive_superglobal(q[b], xt[b], K=k), rtol=1e-5, atol=1e-5)


def test_shared_gram_gives_the_same_scores():
    """Gathering each list's M x M similarities from one Gram over the union of lists changes nothing."""
    rng = np.random.default_rng(5)
    x = torch.from_numpy(_unit(rng, 60, 32))
    q = torch.from_numpy(_unit(rng, 30, 32))
    top = (q @ x.T).topk(20, dim=1).indices
    gram = shared_gram(x, top)
    assert gram is not None and gram[0].numel() <= 60  # 60^2 < 30 * 20^2: computing it once pays
    np.testing.assert_allclose(
        refine_lists(q, x, top, K=4, gram=gram).numpy(), refine_topm(q, x[top], K=4).numpy(), rtol=1e-5, atol=1e-6
    )
    assert shared_gram(x, top[:2]) is None  # two queries: per-list products are cheaper
