"""Index an image folder: list images (non-image files recorded), reuse cached embeddings by file content hash,
encode the rest in batches (bad files skipped with a warning), build and save a vector index.

Layout of the output folder: ``index/`` (a saved :class:`~mmrank.index.base.VectorIndex`), ``cache/`` (an
:class:`~mmrank.index.cache.EmbeddingCache` keyed by sha256 of the file bytes) and ``mmrank_vision.json`` (image
root, encoder name and arguments, index kind, warnings), so :mod:`mmrank.vision.search` can rebuild the encoder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.encoders.base import Encoder
from mmrank.encoders.images import list_image_files
from mmrank.errors import DataFormatError
from mmrank.index import store
from mmrank.index.cache import EmbeddingCache, content_key

MANIFEST_NAME = "mmrank_vision.json"


@dataclass
class IndexReport:
    out_dir: Path
    n_indexed: int
    n_from_cache: int
    n_encoded: int
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"indexed {self.n_indexed} images into {self.out_dir} ({self.n_from_cache} from cache, "
            f"{self.n_encoded} encoded); {len(self.warnings)} skipped"
        )


def encoder_spec(encoder: Encoder) -> dict[str, Any]:
    """``{"name": registry name, "kwargs": {...}}`` that rebuilds ``encoder`` (raises if it cannot)."""
    name = getattr(encoder, "registry_name", None)
    spec = getattr(encoder, "spec", None)
    if name is None or spec is None:
        raise DataFormatError(f"{type(encoder).__name__} cannot describe itself for an index manifest")
    return {"name": name, "kwargs": spec()}


def encoder_from_spec(spec: Mapping[str, Any], **overrides: Any) -> Encoder:
    from mmrank import registry

    return registry.encoder(spec["name"], **{**spec.get("kwargs", {}), **overrides})


def resolve_index_kind(index: str) -> str:
    """``"auto"`` -> ``"faiss-flat"`` when faiss-gpu sees a GPU, else ``"exact"``; other names pass through."""
    if index != "auto":
        return index
    try:
        from mmrank.index.faiss_index import gpu_available

        return "faiss-flat" if gpu_available() else "exact"
    except ImportError:
        return "exact"


def _make_encoder(encoder: Encoder | str, encoder_kwargs: Mapping[str, Any] | None) -> Encoder:
    if isinstance(encoder, Encoder):
        return encoder
    from mmrank import registry

    return registry.encoder(encoder, **dict(encoder_kwargs or {}))


def index_folder(
    folder: str | Path,
    out_dir: str | Path,
    *,
    encoder: Encoder | str = "superglobal",
    encoder_kwargs: Mapping[str, Any] | None = None,
    index: str = "auto",
    use_cache: bool = True,
    batch_size: int | None = None,
) -> IndexReport:
    """Index every image under ``folder`` into ``out_dir``; returns counts and the skipped-file warnings.

    ``index="auto"`` picks ``faiss-flat`` on the GPU when faiss-gpu sees one, else ``exact`` (torch; on CUDA when
    available, and faster than faiss on CPU, see ``benchmarks/exact_search.py``).
    """
    from mmrank import registry

    root = Path(folder).resolve()
    out = Path(out_dir)
    files, warnings = list_image_files(root)
    enc = _make_encoder(encoder, encoder_kwargs)
    spec = encoder_spec(enc)
    keys = [content_key(p) for p in files]
    cache = EmbeddingCache(out / "cache", enc.model_id) if use_cache else None
    if cache is not None:
        found, cached = cache.get_many(keys)
    else:
        found, cached = np.zeros(len(files), dtype=bool), np.zeros((0, enc.dim), np.float32)
    todo = [i for i in range(len(files)) if not found[i]]
    res = enc.encode_images([files[i] for i in todo], batch_size=batch_size)  # type: ignore[attr-defined]
    warnings += res.warnings
    vectors = np.zeros((len(files), enc.dim), dtype=np.float32)
    ok = found.copy()
    if found.any():
        vectors[found] = cached
    good = [todo[j] for j in np.flatnonzero(res.ok)]
    vectors[good] = res.vectors
    ok[good] = True
    if cache is not None and good:
        cache.put_many([keys[i] for i in good], res.vectors)
        cache.save()
    if not ok.any():
        raise DataFormatError(f"no image under {root} could be indexed ({len(warnings)} skipped)")
    ids = [files[i].relative_to(root).as_posix() for i in np.flatnonzero(ok)]
    index = resolve_index_kind(index)
    idx = registry.vector_index(index, model_id=enc.model_id)
    idx.add(vectors[ok], ids)
    idx.save(out / "index")
    manifest = {
        "root": str(root),
        "encoder": spec,
        "index": index,
        "count": len(ids),
        "warnings": warnings,
    }
    store.atomic_write_bytes(out / MANIFEST_NAME, json.dumps(manifest, indent=2).encode())
    return IndexReport(out, len(ids), int(found.sum()), len(good), warnings)
