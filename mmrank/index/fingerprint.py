"""Content fingerprints of model weights, so caches and indexes are keyed by what the weights *are*.

An encoder's settings often name its weights by path (a state dict, a checkpoint, a local model folder).
Overwrite that file and the path is unchanged while every vector it produces changes; a cache keyed by the path
would then serve vectors of the old weights. :func:`settings_fingerprint` replaces every setting that names an
existing file or folder by the sha256 of its content. Each file is hashed once per process and memoised under
``(device, inode, size, mtime_ns)``, so a changed file is hashed again and an unchanged one is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmrank.index.store import sha256_file

_MEMO: dict[tuple[str, int, int, int, int], str] = {}
_LOCK = threading.Lock()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised by ``(realpath, device, inode, size, mtime_ns)``."""
    p = Path(path)
    real = os.path.realpath(p)
    st = os.stat(real)
    key = (real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is None:
        hit = sha256_file(Path(real))
        with _LOCK:
            _MEMO[key] = hit
    return hit


def path_digest(path: str | Path) -> str:
    """:func:`file_digest` of a file; for a folder, a digest over its files' relative names and digests
    (hidden entries such as ``.cache`` or ``.git`` skipped)."""
    p = Path(path)
    if p.is_file():
        return file_digest(p)
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        rel = f.relative_to(p)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        h.update(rel.as_posix().encode("utf-8") + b"\0" + file_digest(f).encode() + b"\n")
    return h.hexdigest()


def _names_existing_path(value: str) -> bool:
    if not value or len(value) > 4096 or "\0" in value:
        return False
    try:
        return Path(value).exists()
    except OSError:
        return False


def _content_settings(value: Any) -> Any:
    if isinstance(value, Path) or (isinstance(value, str) and _names_existing_path(value)):
        return {"content_sha256": path_digest(value)}
    if isinstance(value, Mapping):
        return {str(k): _content_settings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_content_settings(v) for v in value]
    return value


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """sha256 (16 hex digits) of ``settings`` with every value naming an existing file or folder replaced by
    the digest of its content; other values count as they are."""
    blob = json.dumps(_content_settings(settings), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def encoder_settings(encoder: Any) -> dict[str, Any]:
    """What determines an encoder's vectors: its ``spec()`` when it has one, plus any local model path."""
    out: dict[str, Any] = {"model_id": getattr(encoder, "model_id", type(encoder).__name__)}
    spec = getattr(encoder, "spec", None)
    if callable(spec):
        out["spec"] = spec()
    for attr in ("model_path", "weights_path"):
        v = getattr(encoder, attr, None)
        if v is not None:
            out[attr] = str(v)
    return out


def encoder_cache_id(encoder: Any) -> str:
    """``"<model_id>#<content fingerprint>"``: the id under which an encoder's embeddings may be cached."""
    return f"{getattr(encoder, 'model_id', '')}#{settings_fingerprint(encoder_settings(encoder))}"
