"""Issue 12 items 3 and 7: manifest names stay inside the index folder, shapes and counts are checked against the
data files (IndexCorruptError naming the mismatch), -1 padding is dropped from ids and scores alike, and
non-finite vectors are refused at ``add``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import mmrank
from mmrank.errors import DataFormatError, IndexCorruptError, TargetNotEmptyError
from mmrank.index import VectorIndex, store
from mmrank.index.cache import EmbeddingCache

X = np.eye(6, 4, dtype=np.float32) + 0.1
IDS = [f"d{i}" for i in range(6)]


def _saved(tmp_path: Path, kind: str = "exact") -> Path:
    ix = mmrank.vector_index(kind, model_id="m")
    ix.add(X, IDS)
    return ix.save(tmp_path / "ix")


def _tamper(d: Path, edit) -> None:
    """Edit the manifest like an attacker who also fixes the checksums."""
    m = json.loads((d / store.MANIFEST).read_text())
    edit(m)
    files = m["files"] if isinstance(m["files"], dict) else {}
    m["checksums"] = {r: store.sha256_file(d / n) for r, n in files.items() if isinstance(n, str) and (d / n).is_file()}
    (d / store.MANIFEST).write_text(json.dumps(m))


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../outside.json", "sub/ids.json", "..", ".", "", ".hidden.json", "a\\..\\b", 7, None],
)
def test_manifest_names_outside_the_folder_are_refused(tmp_path, name):
    d = _saved(tmp_path)
    (tmp_path / "outside.json").write_text(json.dumps(IDS))
    _tamper(d, lambda m: m["files"].__setitem__("ids", name))
    with pytest.raises(IndexCorruptError, match="not a plain file name"):
        VectorIndex.load(d)


def test_symlink_leading_out_of_the_folder_is_refused(tmp_path):
    d = _saved(tmp_path)
    (tmp_path / "elsewhere.json").write_text(json.dumps(IDS))
    os.symlink(tmp_path / "elsewhere.json", d / "link.json")
    _tamper(d, lambda m: m["files"].__setitem__("ids", "link.json"))
    with pytest.raises(IndexCorruptError, match="symlink"):
        VectorIndex.load(d)


def test_tampered_manifest_never_deletes_outside_files_on_the_next_save(tmp_path):
    d = _saved(tmp_path)
    victim = tmp_path / "victim.npy"
    victim.write_bytes(b"precious")
    _tamper(d, lambda m: m["files"].__setitem__("vectors", "../victim.npy"))
    ix = mmrank.vector_index("exact")
    ix.add(X, IDS)
    with pytest.raises(TargetNotEmptyError, match="not a plain file name"):
        ix.save(d)  # the previous manifest cannot be trusted: refuse, delete nothing
    ix.save(d, overwrite=True)  # told to: replaces the manifest, still deletes nothing it named
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: m.__setitem__("dim", 5), "shape 6x4 != manifest's 6x5"),
        (lambda m: m.__setitem__("count", 5), "6 entries, manifest count is 5"),
        (lambda m: m.__setitem__("count", -1), "'count' is -1"),
        (lambda m: m.__setitem__("dim", "4"), "'dim' is '4'"),
        (lambda m: m["files"].pop("vectors"), "no file for vectors"),
        (lambda m: m.__setitem__("kind", "nonsense"), "not a known index"),
        (lambda m: m.__setitem__("params", {"bogus": 1}), "do not fit"),
        (lambda m: m.__setitem__("files", ["x"]), "'files' is not an object"),
    ],
)
def test_shape_and_count_mismatches_name_the_mismatch(tmp_path, edit, message):
    d = _saved(tmp_path)
    _tamper(d, edit)
    with pytest.raises(IndexCorruptError, match=message.replace("(", r"\(")):
        VectorIndex.load(d)


def test_faiss_index_size_is_checked(tmp_path):
    d = _saved(tmp_path, "faiss-flat")
    _tamper(d, lambda m: (m.__setitem__("count", 5), m.__setitem__("files", {**m["files"], "ids": _ids5(d)})))
    with pytest.raises(IndexCorruptError, match="holds 6 vectors of dimension 4; manifest says 5"):
        VectorIndex.load(d)


def _ids5(d: Path) -> str:
    (d / "ids-5.json").write_text(json.dumps(IDS[:5]))
    return "ids-5.json"


def test_garbage_files_are_index_corrupt_not_tracebacks(tmp_path):
    d = _saved(tmp_path)
    m = json.loads((d / store.MANIFEST).read_text())
    (d / m["files"]["vectors"]).write_bytes(b"not numpy")
    with pytest.raises(IndexCorruptError, match="unreadable array"):
        VectorIndex.load(d, verify=False)
    (d / store.MANIFEST).write_text("[" * 100_000)
    with pytest.raises(IndexCorruptError, match="unreadable manifest"):
        VectorIndex.load(d)
    (d / store.MANIFEST).write_bytes(b"\xff\xfe")
    with pytest.raises(IndexCorruptError, match="unreadable manifest"):
        VectorIndex.load(d)


def test_cache_checks_shapes_too(tmp_path):
    c = EmbeddingCache(tmp_path / "c", "m")
    c.put_many(["a", "b"], np.eye(2, dtype=np.float32))
    c.save()
    _tamper(tmp_path / "c", lambda m: m.__setitem__("count", 3))
    with pytest.raises(IndexCorruptError, match="2 entries, manifest count is 3"):
        EmbeddingCache(tmp_path / "c", "m")


# --- item 7 ---------------------------------------------------------------------------------------
def test_ivf_padding_is_dropped_from_ids_and_scores_alike():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"v{i}" for i in range(400)]
    ix = mmrank.vector_index("faiss-ivf", nlist=8, nprobe=1)
    ix.add(x, ids)
    q = x[:5]
    scores, found = ix.search(q, 300)  # one probed cell holds fewer than 300 vectors: faiss pads with -1
    assert any(len(row) < 300 for row in found)
    pos = {d: i for i, d in enumerate(ids)}
    for qi, (s_row, id_row) in enumerate(zip(scores, found, strict=True)):
        assert len(s_row) == len(id_row) > 0
        np.testing.assert_allclose(s_row, [float(q[qi] @ x[pos[d]]) for d in id_row], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(s_row) <= 1e-6)


def test_dense_retrieval_over_ivf_with_large_k_keeps_scores_with_their_ids():
    from mmrank.retrieve.dense import DenseRetriever
    from mmrank.types import Corpus, Item, Query

    class Fixed:  # an encoder over fixed random vectors (the index is under test, not an encoder)
        model_id, dim = "fixed", 8
        rng = np.random.default_rng(1)
        table = rng.standard_normal((400, 8)).astype(np.float32)

        def encode_items(self, items, batch_size=None):
            return self.table[[int(it.id[1:]) for it in items]]

        def encode_queries(self, queries, batch_size=None):
            return self.table[[int(q.text[1:]) for q in queries]]

    from mmrank.encoders.base import Encoder

    Encoder.register(Fixed)
    corpus = Corpus(Item(f"v{i}", text="t") for i in range(400))
    ret = DenseRetriever(Fixed(), index=mmrank.vector_index("faiss-ivf", nlist=8, nprobe=1)).index(corpus)
    run = ret.retrieve([Query("q", text="v3")], k=300)
    hits = run["q"].hits
    assert 0 < len(hits) < 300 and hits[0].id == "v3"
    t = Fixed.table
    for h in hits:
        assert h.score == pytest.approx(float(t[3] @ t[int(h.id[1:])]), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_refused_at_add(bad):
    ix = mmrank.vector_index("exact")
    x = X.copy()
    x[2, 1] = bad
    with pytest.raises(DataFormatError, match="'d2'"):
        ix.add(x, IDS)
    assert len(ix) == 0
    ix.add(X, IDS)
    with pytest.raises(DataFormatError, match="NaN"):
        ix.search(np.full((1, 4), np.nan, np.float32), 3)
