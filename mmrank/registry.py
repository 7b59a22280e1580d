"""One registry of methods: name -> lazily imported factory.

Nothing heavy is imported until a method is created. Unknown names raise :class:`UnknownNameError`
with close matches; a missing optional dependency raises :class:`MissingDependencyError` naming the extra.
The entries themselves are data, in :mod:`mmrank.catalog`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from mmrank import catalog
from mmrank.catalog import Entry
from mmrank.errors import MissingDependencyError, UnknownNameError

__all__ = [
    "KINDS",
    "Entry",
    "create",
    "encoder",
    "entries",
    "entry",
    "names",
    "register",
    "reranker",
    "resolve",
    "retriever",
    "vector_index",
]

KINDS = ("retriever", "encoder", "reranker", "index", "collection")

_ENTRIES: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
_ALIASES: dict[str, dict[str, str]] = {k: {} for k in KINDS}
_loaded = False


def register(entry: Entry) -> None:
    """Add an entry (used by :mod:`mmrank.catalog` and by plugins)."""
    if entry.kind not in _ENTRIES:
        raise UnknownNameError(f"unknown kind {entry.kind!r}; kinds are {', '.join(KINDS)}")
    key = _normalise(entry.name)
    _ENTRIES[entry.kind][key] = entry
    for a in entry.aliases:
        _ALIASES[entry.kind][_normalise(a)] = key


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for e in catalog.ENTRIES:
            register(e)
        _loaded = True


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def entry(kind: str, name: str) -> Entry:
    """Look up an entry by name or alias; raise with close matches if unknown."""
    _ensure_loaded()
    if kind not in _ENTRIES:
        raise UnknownNameError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    key = _normalise(name)
    key = _ALIASES[kind].get(key, key)
    if key in _ENTRIES[kind]:
        return _ENTRIES[kind][key]
    known = sorted(_ENTRIES[kind]) + sorted(_ALIASES[kind])
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(_ENTRIES[kind]))}")


def resolve(kind: str, name: str) -> Any:
    """Import and return the factory (usually a class) registered under ``name``."""
    e = entry(kind, name)
    module_name, _, attr = e.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing and missing != "mmrank":
            extra = f"pip install 'mmrank[{e.extra}]'" if e.extra else f"pip install {missing}"
            raise MissingDependencyError(
                f"{kind} {e.name!r} needs the package {missing!r}, which is not installed: {extra}"
            ) from err
        raise
    return getattr(module, attr)


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Create the ``kind`` registered as ``name`` with keyword arguments."""
    return resolve(kind, name)(**kwargs)


def entries(kind: str) -> list[Entry]:
    """The registered entries of one kind, in registration order."""
    _ensure_loaded()
    if kind not in _ENTRIES:
        raise UnknownNameError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    return list(_ENTRIES[kind].values())


def names(kind: str | None = None) -> dict[str, list[str]]:
    """Registered names by kind (aliases excluded)."""
    _ensure_loaded()
    kinds = [kind] if kind else list(KINDS)
    return {k: sorted(e.name for e in _ENTRIES[k].values()) for k in kinds}


def retriever(name: str, /, **kwargs: Any) -> Any:
    """Create a retriever, e.g. ``mmrank.retriever("bm25")``."""
    return create("retriever", name, **kwargs)


def reranker(name: str, /, **kwargs: Any) -> Any:
    """Create a reranker, e.g. ``mmrank.reranker("bi-encoder", model="...")``."""
    return create("reranker", name, **kwargs)


def encoder(name: str, /, **kwargs: Any) -> Any:
    """Create an encoder, e.g. ``mmrank.encoder("sentence-transformers", model="...")``."""
    return create("encoder", name, **kwargs)


def vector_index(name: str, /, **kwargs: Any) -> Any:
    """Create a vector index, e.g. ``mmrank.vector_index("exact")`` or ``mmrank.vector_index("faiss-hnsw")``."""
    return create("index", name, **kwargs)
