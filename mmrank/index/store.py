"""Atomic, pickle-free persistence for indexes and embedding caches.

A saved object is a directory holding data files plus ``manifest.json``. Data files get fresh names
on every save and the manifest is replaced last with :func:`os.replace`, so a process killed at any
point leaves the previous manifest -- and the data files it names -- loadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import IndexCorruptError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, then rename."""
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


def write_array(directory: Path, stem: str, array: np.ndarray) -> str:
    """Write ``array`` as a fresh ``.npy`` file (unique name) and return its file name."""
    name = f"{stem}-{uuid.uuid4().hex[:12]}.npy"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name


def write_blob(directory: Path, stem: str, suffix: str, data: bytes) -> str:
    """Write an opaque blob (e.g. a serialised faiss index) under a fresh name; return the name."""
    name = f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"
    atomic_write_bytes(directory / name, data)
    return name


def commit(directory: Path, manifest: dict[str, Any]) -> None:
    """Publish a manifest naming the files just written (with checksums), then drop stale files."""
    directory = Path(directory)
    files = manifest.get("files", {})
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    manifest["checksums"] = {role: sha256_file(directory / name) for role, name in files.items()}
    atomic_write_bytes(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    keep = set(files.values()) | {MANIFEST}
    for p in directory.iterdir():
        if p.name not in keep and not p.name.startswith(".") and p.suffix in {".npy", ".faiss", ".json"}:
            p.unlink(missing_ok=True)
        elif p.name.startswith(".") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)  # leftovers of a killed writer


def read_manifest(directory: Path, *, verify: bool = True) -> dict[str, Any]:
    directory = Path(directory)
    mpath = directory / MANIFEST
    if not mpath.is_file():
        raise IndexCorruptError(f"{directory}: no {MANIFEST}; not a saved mmrank index or cache")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexCorruptError(f"{mpath}: unreadable manifest ({e})") from e
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(f"{mpath}: unsupported format_version {manifest.get('format_version')!r}")
    for role, name in manifest.get("files", {}).items():
        p = directory / name
        if not p.is_file():
            raise IndexCorruptError(f"{directory}: file {name} ({role}) named by the manifest is missing")
        if verify and sha256_file(p) != manifest["checksums"].get(role):
            raise IndexCorruptError(f"{directory}: checksum mismatch for {name} ({role})")
    return manifest


def read_array(directory: Path, name: str) -> np.ndarray:
    return np.load(Path(directory) / name, allow_pickle=False)
