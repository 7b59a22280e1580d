"""Index an image folder: list images (non-image files recorded), reuse cached embeddings by file content hash,
encode the rest in batches (bad files skipped with a warning), build and save a vector index.

Layout of the output folder: ``index-<id>/`` (a saved :class:`~mmrank.index.base.VectorIndex`), ``cache/`` (an
:class:`~mmrank.index.cache.EmbeddingCache` keyed by sha256 of the file bytes, for one encoder *and* one content
of its weights) and ``mmrank_vision.json`` (image root, encoder name and arguments, weights fingerprint, index kind,
warnings, and the name of the index sub-folder), so :mod:`mmrank.vision.search` can rebuild the encoder.

One commit point: each run saves a fresh ``index-<id>/`` and then publishes ``mmrank_vision.json`` naming it with
one atomic rename (:class:`mmrank.index.store.Writer`, under the folder's writer lock); only then is the previous
index sub-folder removed. A run killed at any moment leaves the previous index and manifest, consistent.
"""

from __future__ import annotations

import shutil
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
    notes: list[str] = field(default_factory=list)

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

    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise DataFormatError(f"encoder spec {spec!r} has no encoder name")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise DataFormatError(f"encoder spec {spec!r}: 'kwargs' is not an object")
    return registry.encoder(spec["name"], **{**kwargs, **overrides})


def read_vision_manifest(index_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """``(manifest, index sub-folder)`` of a folder index; names are confined to the folder."""
    d = Path(index_dir)
    mpath = d / MANIFEST_NAME
    if not mpath.is_file():
        raise DataFormatError(f"{d}: no {MANIFEST_NAME}; not made by `mmrank index`")
    m = store.load_manifest_json(mpath)
    if "format_version" not in m and "encoder" in m and "root" in m:  # written before the one-commit layout
        return m, d / "index"
    m = store.read_manifest(d, name=MANIFEST_NAME, required=("index",))
    for key in ("root", "encoder"):
        if key not in m:
            raise DataFormatError(f"{mpath}: lacks {key!r}")
    return m, store.manifest_files(d, m)["index"]


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
    overwrite: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    workers: int = 1,
) -> IndexReport:
    """Index every image under ``folder`` into ``out_dir``; returns counts and the skipped-file warnings.

    ``index="auto"`` picks ``faiss-flat`` on the GPU when faiss-gpu sees one, else ``exact`` (torch; on CUDA when
    available, and faster than faiss on CPU, see ``benchmarks/exact_search.py``). ``out_dir`` must be empty, new
    or an earlier output of this function (``overwrite=True`` accepts another folder and leaves its files alone).
    The embedding cache is keyed by the encoder *and* the content of its weights files: overwriting a checkpoint
    re-encodes every image (noted in ``IndexReport.notes``).

    ``engine="ray"`` encodes the images that are not cached on ``workers`` Ray actors (a Ray Data pipeline, see
    :mod:`mmrank.scale.ray_engine`; ``ray_address`` joins a cluster, otherwise a local runtime starts); the shards
    are merged in file order and saved by the same writer, so the index equals the local one.
    """
    from mmrank import registry
    from mmrank.index.fingerprint import encoder_cache_id

    if engine not in ("local", "ray"):
        raise DataFormatError(f"engine must be 'local' or 'ray', got {engine!r}")
    root = Path(folder).resolve()
    out = Path(out_dir)
    files, warnings = list_image_files(root)
    enc = _make_encoder(encoder, encoder_kwargs)
    spec = encoder_spec(enc)
    cache_id = encoder_cache_id(enc)
    notes: list[str] = []
    with store.writer(out, manifest=MANIFEST_NAME, overwrite=overwrite, allowed={"cache"}) as w:
        legacy = (out / MANIFEST_NAME).is_file() and not w.previous
        keys = [content_key(p) for p in files]
        cache = EmbeddingCache(out / "cache", cache_id, on_mismatch="reset") if use_cache else None
        if cache is not None and cache.reset_from is not None:
            notes.append(f"embedding cache was for {cache.reset_from}, not {cache_id}; re-encoding every image")
        if cache is not None:
            found, cached = cache.get_many(keys)
        else:
            found, cached = np.zeros(len(files), dtype=bool), np.zeros((0, enc.dim), np.float32)
        todo = [i for i in range(len(files)) if not found[i]]
        if engine == "ray" and todo:
            from mmrank.encoders.images import EncodedImages
            from mmrank.scale.ray_engine import encode_images_ray

            full, good_rows, ray_warnings, _ = encode_images_ray(
                [files[i] for i in todo],
                spec,
                w.path("shards"),
                batch_size=batch_size or 32,
                workers=workers,
                address=ray_address,
            )
            res = EncodedImages(full[good_rows], good_rows, ray_warnings)
        else:
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
        sub = w.path("index")
        idx.save(sub)
        w.commit(
            {
                "root": str(root),
                "encoder": spec,
                "encoder_cache_id": cache_id,
                "index": index,
                "engine": engine,
                "count": len(ids),
                "warnings": warnings,
                "files": {"index": sub.name},
            }
        )
        if legacy and (out / "index" / store.MANIFEST).is_file():  # the sub-folder of the old layout
            shutil.rmtree(out / "index", ignore_errors=True)
    return IndexReport(out, len(ids), int(found.sum()), len(good), warnings, notes)
