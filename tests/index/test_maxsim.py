"""Multi-vector MaxSim index: scores equal a naive loop and the processors' score_retrieval; ANN at full recall
equals exact; pooling; save/load round trips; kill -9 mid-save; corrupt or mismatched files refused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mmrank.errors import DataFormatError, IndexCorruptError, OptionError
from mmrank.index import store
from mmrank.index.maxsim import MultiVectorIndex, default_candidates, maxsim_naive, pool_tokens

torch.set_num_threads(1)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def collection(n=30, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    docs = [unit(rng.standard_normal((int(rng.integers(3, 40)), dim))).astype(np.float32) for _ in range(n)]
    queries = [unit(rng.standard_normal((int(rng.integers(2, 9)), dim))).astype(np.float32) for _ in range(7)]
    return docs, queries


def built(docs, **kw):
    ix = MultiVectorIndex(model_id="m", chunk_tokens=50, query_batch=3, **kw)  # small chunks: many blocks
    ix.add(docs, [f"d{i}" for i in range(len(docs))])
    return ix


def stored(ix, i):
    return ix.matrix(i).astype(np.float32)


def test_exact_scores_equal_naive_loop_and_hand_example():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    d = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    ix = MultiVectorIndex()
    ix.add([d], ["x"])
    assert ix.scores([q])[0, 0] == pytest.approx(1.0 + 0.5)  # max(0.5, 1, 0) + max(0.5, 0, -1)
    docs, queries = collection()
    ix = built(docs)
    s = ix.scores(queries)
    ref = np.array([[maxsim_naive(qq, stored(ix, i)) for i in range(len(docs))] for qq in queries])
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-5)


def test_exact_scores_equal_score_retrieval_of_both_processors():
    from transformers import ColPaliProcessor, ColQwen2Processor

    docs, queries = collection(seed=1)
    # score_retrieval zero-pads: it equals MaxSim when each query token's best similarity is >= 0
    docs = [np.vstack([d, unit(np.ones((1, d.shape[1])))]) for d in docs]
    queries = [np.abs(q) / np.linalg.norm(q, axis=1, keepdims=True) for q in queries]
    ix = built(docs)
    D = [torch.from_numpy(stored(ix, i)) for i in range(len(docs))]
    Q = [torch.from_numpy(q) for q in queries]
    for proc in (ColPaliProcessor, ColQwen2Processor):
        ref = proc.score_retrieval(None, Q, D, batch_size=4, output_dtype=torch.float32).numpy()
        np.testing.assert_allclose(ix.scores(queries), ref, rtol=1e-5, atol=1e-5)


def test_padding_never_wins_unlike_zero_padded_reference():
    ix = MultiVectorIndex()
    ix.add([np.array([[-1.0, 0.0]]), np.array([[-1.0, 0.0], [0.0, -1.0], [0.0, -1.0]])], ["short", "long"])
    assert ix.scores([np.array([[1.0, 0.0]])])[0, 0] == pytest.approx(-1.0)


def test_search_order_ties_and_subset():
    docs, queries = collection()
    docs.append(docs[0].copy())  # exact tie with d0: insertion order decides
    ix = built(docs)
    scores, ids = ix.search(queries, 5)
    full = ix.scores(queries)
    for qi in range(len(queries)):
        want = sorted(range(len(docs)), key=lambda i: (-full[qi, i], i))[:5]
        assert ids[qi] == [f"d{i}" for i in want]
        assert np.all(np.diff(scores[qi]) <= 0)
    sub = np.array([4, 1, 17])
    np.testing.assert_allclose(ix.scores(queries, sub), full[:, sub], rtol=1e-6)


def test_ann_full_recall_equals_exact_and_ivf_is_subset():
    docs, queries = collection(n=60)
    ix = built(docs)
    exact_s, exact_i = ix.search(queries, 10)
    s, i = ix.search(queries, 10, approximate=True, ann_factory="Flat", token_k=10**9, max_candidates=60)
    assert i == exact_i
    for a, b in zip(s, exact_s, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # IVF with every list probed and enough tokens per query token: still full recall
    n_tok = ix.n_tokens
    s, i = ix.search(queries, 10, approximate=True, ann_factory="IVF4,Flat", nprobe=4, token_k=n_tok)
    assert i == exact_i
    # a small candidate budget scores a subset exactly (scores are true MaxSim of those items)
    s, i = ix.search(queries, 10, approximate=True, ann_factory="Flat", token_k=1)
    full = ix.scores(queries)
    for qi, (ss, ii) in enumerate(zip(s, i, strict=True)):
        np.testing.assert_allclose(ss, [full[qi, int(x[1:])] for x in ii], rtol=1e-6)


def test_ann_candidates_are_the_top_items_by_imputed_approximate_score():
    """Independent computation: brute-force token neighbours, XTR-imputed sums, top max_candidates items."""
    docs, queries = collection(n=60, seed=5)
    ix = built(docs)
    toks = np.concatenate([stored(ix, i) for i in range(len(docs))])
    owner = np.repeat(np.arange(len(docs)), np.diff(ix.offsets))
    token_k, cap = 12, 7
    got = ix.candidates(queries, token_k=token_k, max_candidates=cap, ann_factory="Flat")
    for q, g in zip(queries, got, strict=True):
        sims = q @ toks.T
        # an item reached by some query token earns, per query token, its best retrieved similarity or the floor
        per_token = []
        for row in sims:
            near = np.argsort(-row)[:token_k]
            best: dict[int, float] = {}
            for t in near:
                best[int(owner[t])] = max(best.get(int(owner[t]), -np.inf), float(row[t]))
            per_token.append((best, float(row[near].min())))
        reached = set().union(*(b.keys() for b, _ in per_token))
        approx = {i: sum(b.get(i, floor) for b, floor in per_token) for i in reached}
        want = sorted(reached, key=lambda i: (-approx[i], i))[:cap]
        assert len(g) <= cap
        assert g.tolist() == sorted(want)
    # the exact stage scores only those candidates: every hit is one of them, with its true MaxSim
    s, i = ix.search(queries, 5, approximate=True, token_k=token_k, max_candidates=cap, ann_factory="Flat")
    full = ix.scores(queries)
    for qi, (ss, ii) in enumerate(zip(s, i, strict=True)):
        assert {int(x[1:]) for x in ii} <= set(got[qi].tolist())
        np.testing.assert_allclose(ss, [full[qi, int(x[1:])] for x in ii], rtol=1e-6)
    assert [default_candidates(k) for k in (1, 10, 32, 33, 100)] == [128, 128, 128, 132, 400]
    with pytest.raises(OptionError, match="max_candidates"):
        ix.search(queries, 5, approximate=True, max_candidates=0, ann_factory="Flat")


def test_default_nlist_fits_the_training_sample():
    import faiss

    docs, _ = collection(n=60)
    ix = built(docs)
    assert ix.n_tokens // 39 > 200 // 39  # the token count alone would allow more lists
    assert faiss.extract_index_ivf(ix.build_ann(train_size=200)).nlist == 200 // 39  # >= 39 training points each


def test_pooling_reduces_tokens_by_factor_and_means_clusters():
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((3, 8)))
    toks = np.repeat(centres, 4, axis=0) + 1e-3 * rng.standard_normal((12, 8))
    pooled = pool_tokens(toks, 4)
    assert pooled.shape == (3, 8)
    # each pooled vector is the mean of one well-separated group
    for c in centres:
        assert np.min(np.linalg.norm(pooled - c, axis=1)) < 1e-2
    docs, _ = collection()
    ix = built(docs, pool_factor=2)
    assert ix.n_tokens == sum(max(1, d.shape[0] // 2) for d in docs)


def test_save_load_round_trip_mmap_and_ann(tmp_path):
    docs, queries = collection()
    ix = built(docs, pool_factor=None)
    ix.build_ann("IVF4,Flat")
    ix.save(tmp_path / "ix")
    back = MultiVectorIndex.load(tmp_path / "ix")
    assert isinstance(back.tokens, np.memmap) and back.tokens.dtype == np.float16
    assert back.ids == ix.ids and back.model_id == "m" and back._ann is not None
    np.testing.assert_array_equal(back.scores(queries), ix.scores(queries))
    assert back.search(queries, 3, approximate=True, nprobe=4, token_k=back.n_tokens)[1] == ix.search(queries, 3)[1]


def test_refuses_mixed_models_bad_matrices_and_corrupt_files(tmp_path):
    docs, _ = collection()
    ix = MultiVectorIndex()
    ix.add(docs[:2], ["a", "b"], model_id="colqwen2-A")
    with pytest.raises(DataFormatError, match="cannot join"):
        ix.add(docs[2:3], ["c"], model_id="colpali-B")
    with pytest.raises(DataFormatError, match="NaN"):
        ix.add([np.full((2, 16), np.nan)], ["n"])
    with pytest.raises(DataFormatError, match="non-empty"):
        ix.add([np.zeros((0, 16))], ["e"])
    with pytest.raises(DataFormatError, match="dimension"):
        ix.add([np.ones((2, 8))], ["w"])
    with pytest.raises(DataFormatError):
        ix.scores([np.ones((2, 8))])
    ix.save(tmp_path / "ix")
    m = json.loads((tmp_path / "ix" / store.MANIFEST).read_text())
    m["n_tokens"] += 1  # manifest no longer matches the token matrix
    (tmp_path / "ix" / store.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="token array"):
        MultiVectorIndex.load(tmp_path / "ix")
    ix.save(tmp_path / "iy")
    tok = next(p for p in (tmp_path / "iy").iterdir() if p.name.startswith("tokens-"))
    tok.write_bytes(tok.read_bytes()[:-8])
    with pytest.raises(IndexCorruptError):
        MultiVectorIndex.load(tmp_path / "iy")


KILL = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from mmrank.index.maxsim import MultiVectorIndex
    target, phase = sys.argv[1], sys.argv[2]
    ix = MultiVectorIndex(model_id="v1")
    ix.add([np.eye(4, dtype=np.float32)[:2], np.eye(4, dtype=np.float32)[2:]], ["a", "b"])
    ix.save(target)
    ix2 = MultiVectorIndex(model_id="v2")
    ix2.add([np.ones((3, 4), dtype=np.float32) / 2], ["z"])
    if phase == "mid-data":
        real = np.save
        def dying(f, arr, allow_pickle=False):
            f.write(b"\\x93NUMPY partial"); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
        np.save = dying
    else:
        real = os.replace
        def dying(src, dst):
            if str(dst).endswith("manifest.json"):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst)
        os.replace = dying
    ix2.save(target)
    """
)


@pytest.mark.parametrize("phase", ["mid-data", "before-manifest"])
def test_kill_9_during_save_leaves_previous_index(tmp_path, phase):
    target = tmp_path / "ix"
    proc = subprocess.run([sys.executable, "-c", KILL, str(target), phase], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    back = MultiVectorIndex.load(target)
    assert back.model_id == "v1" and back.ids == ["a", "b"]
    np.testing.assert_array_equal(back.matrix(1), np.eye(4, dtype=np.float16)[2:])
    back.save(target)  # the next save heals the debris
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]
