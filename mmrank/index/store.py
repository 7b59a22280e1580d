"""Atomic, pickle-free persistence for indexes, embedding caches and folder indexes.

A saved object is a folder holding data entries plus a manifest (``manifest.json`` by default). A save goes
through one :class:`Writer`, which

* refuses a non-empty folder that is not an mmrank save (``overwrite=True`` accepts it; nothing in it is deleted);
* holds an exclusive ``fcntl`` lock on ``.mmrank.lock`` for the whole save, so concurrent saves into one folder
  run one after the other and never publish a manifest naming files the other deleted;
* writes every data entry under a fresh name, first recording that name in a journal (``.mmrank-journal``);
* publishes the new manifest last with :func:`os.replace` and fsyncs the folder: that rename is the one commit
  point, so a process killed at any moment leaves the previous manifest -- and the entries it names -- loadable;
* then deletes only entries the *previous* manifest named (journalled before the rename, so a kill right after it
  is healed by the next save) and journalled leftovers of killed saves: never a file it did not write itself.

Readers confine every name in a manifest to the folder (:func:`safe_name`): no absolute paths, no ``..``, no
separators, no symlink leading out of the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import IndexCorruptError, TargetNotEmptyError

try:  # POSIX advisory locks; elsewhere saves are still atomic but not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
LOCK_NAME = ".mmrank.lock"
JOURNAL_NAME = ".mmrank-journal"
_OWN_HIDDEN = (LOCK_NAME, JOURNAL_NAME)
_MAX_MANIFEST_BYTES = 64 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(directory: Path) -> None:
    """Make renames and deletions inside ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


# --- names inside a saved folder ------------------------------------------------------------------
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def safe_name(directory: Path, name: object, *, where: str = "") -> Path:
    """``directory / name`` for a plain entry name that stays inside ``directory``; else :class:`IndexCorruptError`.

    A name is one path component of letters, digits, ``.``, ``_`` or ``-`` (not starting with a dot), so absolute
    paths, ``..`` and separators are refused; a symlink whose target leaves the folder is refused too.
    """
    label = f"{directory}{' ' + where if where else ''}"
    if not isinstance(name, str) or not _SAFE.match(name) or name in (".", ".."):
        raise IndexCorruptError(f"{label}: manifest names {name!r}, which is not a plain file name inside the folder")
    p = Path(directory) / name
    if p.is_symlink():
        try:
            p.resolve(strict=True).relative_to(Path(directory).resolve())
        except (OSError, ValueError) as e:
            raise IndexCorruptError(f"{label}: {name!r} is a symlink leading outside the folder") from e
    return p


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _is_tmp_of(entry: str, name: str) -> bool:
    return entry.startswith(f".{name}.") and entry.endswith(".tmp")


# --- manifests --------------------------------------------------------------------------------------
def load_manifest_json(path: Path) -> dict[str, Any]:
    """Parse a manifest file; any unreadable, oversized or non-object content is :class:`IndexCorruptError`."""
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise IndexCorruptError(f"{path}: manifest larger than {_MAX_MANIFEST_BYTES >> 20} MiB")
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except IndexCorruptError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IndexCorruptError(f"{path}: unreadable manifest ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise IndexCorruptError(f"{path}: manifest is a JSON {type(obj).__name__}, not an object")
    return obj


def manifest_files(directory: Path, manifest: dict[str, Any], *, where: str = "") -> dict[str, Path]:
    """``{role: confined path}`` of the entries a manifest names (see :func:`safe_name`)."""
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise IndexCorruptError(f"{directory}: manifest 'files' is not an object")
    return {str(role): safe_name(directory, name, where=where) for role, name in files.items()}


def read_manifest(
    directory: Path, *, verify: bool = True, name: str = MANIFEST, required: Iterable[str] = ()
) -> dict[str, Any]:
    """Read and check a manifest: format version, confined names, the ``required`` roles, presence and checksums."""
    directory = Path(directory)
    mpath = directory / name
    if not mpath.is_file():
        raise IndexCorruptError(f"{directory}: no {name}; not a saved mmrank index or cache")
    manifest = load_manifest_json(mpath)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(f"{mpath}: unsupported format_version {manifest.get('format_version')!r}")
    files = manifest_files(directory, manifest)
    missing_roles = [r for r in required if r not in files]
    if missing_roles:
        raise IndexCorruptError(f"{mpath}: manifest names no file for {', '.join(missing_roles)}")
    checksums = manifest.get("checksums", {})
    if not isinstance(checksums, dict):
        raise IndexCorruptError(f"{mpath}: manifest 'checksums' is not an object")
    for role, p in files.items():
        if not p.exists():
            raise IndexCorruptError(f"{directory}: file {p.name} ({role}) named by the manifest is missing")
        if p.is_file() and verify and sha256_file(p) != checksums.get(role):
            raise IndexCorruptError(f"{directory}: checksum mismatch for {p.name} ({role})")
    return manifest


def read_array(directory: Path, name: str, *, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Load a ``.npy`` named by a manifest (no pickle) as float32; check finite values and ``shape``."""
    p = safe_name(Path(directory), name)
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise IndexCorruptError(f"{p}: unreadable array ({type(e).__name__}: {e})") from e
    if arr.dtype.kind not in "fiu":
        raise IndexCorruptError(f"{p}: array dtype {arr.dtype} is not numeric")
    if shape is not None and (
        arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape, strict=True))
    ):
        want = "x".join("?" if s is None else str(s) for s in shape)
        raise IndexCorruptError(f"{p}: array shape {'x'.join(map(str, arr.shape))} != manifest's {want}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise IndexCorruptError(f"{p}: array holds NaN or infinite values")
    return arr


def read_json_list(directory: Path, name: str, *, length: int | None = None) -> list[str]:
    """Load a JSON list of strings named by a manifest; check its length against the manifest's count."""
    p = safe_name(Path(directory), name)
    try:
        obj = json.loads(p.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IndexCorruptError(f"{p}: unreadable id list ({type(e).__name__}: {e})") from e
    if not isinstance(obj, list) or not all(isinstance(x, str) for x in obj):
        raise IndexCorruptError(f"{p}: expected a JSON list of strings")
    if length is not None and len(obj) != length:
        raise IndexCorruptError(f"{p}: {len(obj)} entries, manifest count is {length}")
    if len(set(obj)) != len(obj):
        raise IndexCorruptError(f"{p}: duplicate entries")
    return obj


def manifest_int(manifest: dict[str, Any], key: str, directory: Path, *, minimum: int = 0) -> int:
    v = manifest.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise IndexCorruptError(f"{directory}: manifest {key!r} is {v!r}, not an integer >= {minimum}")
    return v


# --- writing ----------------------------------------------------------------------------------------
class Writer:
    """One locked save into ``directory``: ``with Writer(d) as w: name = w.array("vectors", x); w.commit({...})``.

    ``overwrite=True`` accepts a non-empty folder that holds no mmrank manifest (its files are left alone);
    ``allowed`` names entries that may sit in the folder without making it "foreign" (e.g. a cache sub-folder).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        manifest: str = MANIFEST,
        overwrite: bool = False,
        allowed: Iterable[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.manifest_name = manifest
        self.overwrite = overwrite
        self.allowed = set(allowed)
        self.previous: dict[str, Path] = {}
        self.written: list[str] = []
        self.committed = False
        self._lock_fd: int | None = None

    # lifecycle
    def __enter__(self) -> Writer:
        d = self.directory
        if d.exists() and not d.is_dir():
            raise TargetNotEmptyError(f"{d} exists and is not a folder")
        d.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._check_target()
            self._recover()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self.committed:  # a failed save removes what it wrote; the previous save stays as it was
                for name in self.written:
                    self._drop_written(name)
                self._clear_journal()
        finally:
            self._unlock()

    def _lock(self) -> None:
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _check_target(self) -> None:
        d = self.directory
        mpath = d / self.manifest_name
        if mpath.is_file():
            why = ""
            try:
                m = load_manifest_json(mpath)
                ours = m.get("format_version") == FORMAT_VERSION or _legacy_manifest(m)
                if m.get("format_version") == FORMAT_VERSION:
                    self.previous = manifest_files(d, m)
            except IndexCorruptError as e:
                ours, why = False, f" ({e})"
            if ours or self.overwrite:  # overwrite: replace the manifest, delete nothing it names
                return
            raise TargetNotEmptyError(
                f"{d}: {self.manifest_name} is not a valid mmrank manifest{why}; refusing to write here "
                "(choose an empty folder, or pass overwrite=True / --overwrite)"
            )
        debris = set(self._journal_names())  # a killed first save: its own entries do not make the folder foreign
        foreign = [
            p.name
            for p in d.iterdir()
            if p.name not in _OWN_HIDDEN
            and p.name not in self.allowed
            and p.name not in debris
            and not any(_is_tmp_of(p.name, n) for n in debris | {self.manifest_name})
        ]
        if foreign and not self.overwrite:
            shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
            raise TargetNotEmptyError(
                f"{d} is not empty and holds no mmrank save ({shown}); refusing to write into it "
                "(choose an empty folder, or pass overwrite=True / --overwrite: existing files are left alone)"
            )

    # journal: every entry name is recorded before it is created, so a killed save's debris can be found
    def _journal_names(self) -> list[str]:
        j = self.directory / JOURNAL_NAME
        if not j.is_file():
            return []
        return [n for n in j.read_text(encoding="utf-8", errors="replace").split("\n") if n]

    def _journal(self, name: str) -> None:
        with open(self.directory / JOURNAL_NAME, "a", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _clear_journal(self) -> None:
        (self.directory / JOURNAL_NAME).unlink(missing_ok=True)

    def _recover(self) -> None:
        """Remove what killed saves left: journalled entries the current manifest does not name, their temps."""
        keep = {p.name for p in self.previous.values()} | {self.manifest_name}
        for name in self._journal_names():
            if not _SAFE.match(name):
                continue
            for entry in os.listdir(self.directory):
                if _is_tmp_of(entry, name):
                    (self.directory / entry).unlink(missing_ok=True)
            if name not in keep:
                _remove(self.directory / name)
        self._clear_journal()
        for entry in os.listdir(self.directory):  # a killed manifest write
            if _is_tmp_of(entry, self.manifest_name):
                (self.directory / entry).unlink(missing_ok=True)

    def _drop_written(self, name: str) -> None:
        for entry in os.listdir(self.directory):
            if _is_tmp_of(entry, name):
                (self.directory / entry).unlink(missing_ok=True)
        _remove(self.directory / name)

    # writing entries
    def new_name(self, stem: str, suffix: str = "") -> str:
        """A fresh entry name, journalled before anything is created under it."""
        name = f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"
        self._journal(name)
        self.written.append(name)
        return name

    def path(self, stem: str, suffix: str = "") -> Path:
        """A fresh journalled path (for a sub-folder the caller fills, e.g. a nested index)."""
        return self.directory / self.new_name(stem, suffix)

    def blob(self, stem: str, suffix: str, data: bytes) -> str:
        name = self.new_name(stem, suffix)
        atomic_write_bytes(self.directory / name, data)
        return name

    def array(self, stem: str, array: np.ndarray) -> str:
        name = self.new_name(stem, ".npy")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    def commit(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Publish ``manifest`` (its ``files`` name entries written by this writer); then drop what it replaced."""
        d = self.directory
        files = manifest.get("files", {})
        out = {"format_version": FORMAT_VERSION, **manifest}
        out["checksums"] = {
            role: sha256_file(d / name) for role, name in files.items() if (d / name).is_file()
        }  # sub-folders carry their own manifests
        keep = set(files.values()) | {self.manifest_name}
        for p in self.previous.values():  # to be deleted once replaced: journalled, so a kill in between is healed
            if p.name not in keep:
                self._journal(p.name)
        atomic_write_bytes(d / self.manifest_name, json.dumps(out, indent=2, sort_keys=True).encode())
        self.committed = True
        for p in self.previous.values():
            if p.name not in keep:
                _remove(p)
        for name in self.written:  # written but not published (should not happen): not left behind
            if name not in keep:
                self._drop_written(name)
        self._clear_journal()
        fsync_dir(d)
        return out


def _legacy_manifest(m: dict[str, Any]) -> bool:
    """A folder index written before manifests carried ``format_version`` (``mmrank_vision.json`` v0)."""
    return "encoder" in m and "root" in m


@contextlib.contextmanager
def writer(directory: str | Path, **kwargs: Any) -> Iterator[Writer]:
    """``with store.writer(d) as w: ...`` -- see :class:`Writer`."""
    with Writer(directory, **kwargs) as w:
        yield w
