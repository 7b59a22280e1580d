"""Item 1 of issue 12: saves never delete files they did not write, refuse foreign folders, serialise concurrent
writers with a lock, and survive kill -9 at any moment (real processes, real SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mmrank
from mmrank.errors import TargetNotEmptyError
from mmrank.index import VectorIndex, store

REPO = Path(__file__).resolve().parents[2]


def _index(seed: int, n: int = 6, d: int = 4, tag: str = "v"):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    ix = mmrank.vector_index("exact", model_id=f"{tag}{seed}")
    ix.add(x, [f"{tag}{seed}-{i}" for i in range(n)])
    return ix


def _entries(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def _named(d: Path) -> set[str]:
    m = json.loads((d / store.MANIFEST).read_text())
    return set(m["files"].values()) | {store.MANIFEST}


def test_save_into_foreign_folder_is_refused_and_keeps_its_files(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    for name, data in {"notes.json": b"{}", "mine.npy": b"x", "model.faiss": b"y", "a.txt": b"z"}.items():
        (d / name).write_bytes(data)
    with pytest.raises(TargetNotEmptyError, match="overwrite"):
        _index(0).save(d)
    assert _entries(d) == {"notes.json", "mine.npy", "model.faiss", "a.txt", ".mmrank.lock"}
    _index(0).save(d, overwrite=True)  # told to: the foreign files stay
    _index(1).save(d)  # now an index: later saves need no flag, and delete only the previous save's files
    assert {"notes.json", "mine.npy", "model.faiss", "a.txt"} <= _entries(d)
    assert _entries(d) - {"notes.json", "mine.npy", "model.faiss", "a.txt", ".mmrank.lock"} == _named(d)
    assert VectorIndex.load(d).model_id == "v1"


def test_save_into_cwd_with_files_is_refused(tmp_path, monkeypatch):
    (tmp_path / "report.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetNotEmptyError):
        _index(0).save(".")
    assert (tmp_path / "report.json").read_text() == "{}"


def test_foreign_manifest_json_is_not_an_index(tmp_path):
    (tmp_path / "manifest.json").write_text('{"name": "my web app"}')
    with pytest.raises(TargetNotEmptyError, match="not a valid mmrank manifest"):
        _index(0).save(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"name": "my web app"}


def test_resave_deletes_only_the_previous_save(tmp_path):
    d = tmp_path / "ix"
    _index(0).save(d)
    first = _named(d)
    (d / "later-user-file.npy").write_bytes(b"user data")  # appears after the index was made
    _index(1).save(d)
    assert not (first - {store.MANIFEST}) & _entries(d)
    assert (d / "later-user-file.npy").read_bytes() == b"user data"


def test_failed_save_removes_only_its_own_files(tmp_path):
    d = tmp_path / "ix"
    _index(0).save(d)
    before = _entries(d)
    bad = _index(1)
    bad.ids.append("one-too-many")  # fails while writing (after the vectors were written)

    class Boom(RuntimeError):
        pass

    def explode(*_a, **_k):
        raise Boom

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store.Writer, "commit", explode)
        with pytest.raises(Boom):
            bad.save(d)
    assert _entries(d) == before
    assert VectorIndex.load(d).model_id == "v0"


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, mmrank
    target, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for r in range(rounds):
        x = np.random.default_rng(r).standard_normal((50, 8)).astype(np.float32)
        ix = mmrank.vector_index("faiss-flat", model_id=f"{tag}-{r}")
        ix.add(x, [f"{tag}-{r}-{i}" for i in range(50)])
        ix.save(target)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from mmrank.index import VectorIndex
    target, seconds = sys.argv[1], float(sys.argv[2])
    end, n = time.time() + seconds, 0
    while time.time() < end:
        ix = VectorIndex.load(target)
        assert len(ix) == 50 and ix.ids[0].startswith(ix.model_id), (ix.model_id, ix.ids[:1])
        n += 1
    print(n)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_concurrent_saves_and_loads_stay_consistent(tmp_path):
    d = tmp_path / "ix"
    _index(0, n=50, d=8).save(d)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(d), tag, "6"], env=_env(), stderr=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(d), "2"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    for p in writers:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err.decode()
    assert int(out) > 0
    ix = VectorIndex.load(d)  # checksums verified
    assert ix.model_id in ("a-5", "b-5")
    assert _entries(d) == _named(d) | {".mmrank.lock"}  # nothing orphaned, nothing named missing


LOOPER = textwrap.dedent(
    """
    import sys, numpy as np, mmrank
    target, r = sys.argv[1], 0
    print("ready", flush=True)
    while True:
        x = np.random.default_rng(r).standard_normal((2000, 64)).astype(np.float32)
        ix = mmrank.vector_index("faiss-flat", model_id=f"loop-{r}")
        ix.add(x, [f"loop-{r}-{i}" for i in range(2000)])
        ix.save(target)
        r += 1
    """
)


def test_kill_9_at_random_moments_never_leaves_an_unloadable_index(tmp_path):
    d = tmp_path / "ix"
    rng = np.random.default_rng(0)
    for _ in range(6):
        p = subprocess.Popen([sys.executable, "-c", LOOPER, str(d)], env=_env(), stdout=subprocess.PIPE)
        assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL
        if (d / store.MANIFEST).is_file():
            ix = VectorIndex.load(d)  # checksums verified
            assert len(ix) == 2000 and ix.ids[0].startswith(ix.model_id)
    _index(9).save(d)  # the next save clears the debris of every killed one
    assert _entries(d) == _named(d) | {".mmrank.lock"}
