"""Corpus-scale encoding and batch reranking as Ray Data pipelines (Moritz et al., "Ray: A Distributed Framework
for Emerging AI Applications", OSDI 2018; Ray Data ``map_batches`` with an actor pool).

Each actor loads the model once (``fn_constructor_kwargs``: a registry name plus arguments, never a pickled model),
takes ``num_gpus`` when the cluster has GPUs, and answers batches of rows. The driver streams the results back,
writes them as shards into a journalled staging folder of the index writer, and merges the shards in input order
into the same files the single-process path writes; the index's marker is published last, so a failure anywhere
leaves the previous index as it was.

``address=None`` starts a local Ray runtime (its workers import this very ``mmrank``); ``address="ray://..."`` or
``"auto"`` joins a running cluster, whose nodes need ``mmrank`` and the model files installed (see the README).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError, MissingDependencyError
from mmrank.types import Hit, Item, PageRef, Query, Ranking, Run


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Connect to ``address`` or start a local runtime (no dashboard); a no-op when Ray is already initialised."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a declared extra
        raise MissingDependencyError("--engine ray needs Ray: pip install 'mmrank[scale]'") from e
    if ray.is_initialized():
        return
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return
    pkg_parent = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (pkg_parent, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "TOKENIZERS_PARALLELISM": "false"}},
    )


def _gpus_per_worker() -> float:
    import ray

    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


# --- items and queries as JSON rows (Arrow-friendly, no pickle) ----------------------------------------------
def _actor_batches(
    rows: list[dict[str, Any]], actor: type, kwargs: dict[str, Any], batch_size: int, workers: int
) -> Any:
    """The output batches (numpy format) of ``actor`` mapped over ``rows`` by a pool of ``workers`` Ray actors."""
    import ray.data

    ds = ray.data.from_items(rows).map_batches(
        actor,
        fn_constructor_kwargs=kwargs,
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=_gpus_per_worker(),
        batch_format="numpy",
    )
    return ds.iter_batches(batch_size=None, batch_format="numpy")


def item_to_json(it: Item) -> dict[str, Any]:
    image = it.image if isinstance(it.image, (str, Path)) else None
    if it.image is not None and image is None:
        raise DataFormatError(f"item {it.id!r}: only images given by path can travel to Ray workers")
    page = [it.page.doc_id, it.page.page] if it.page else None
    return {"id": it.id, "text": it.text, "title": it.title, "image": str(image) if image else None, "page": page}


def item_from_json(d: dict[str, Any]) -> Item:
    page = PageRef(d["page"][0], int(d["page"][1])) if d.get("page") else None
    return Item(d["id"], text=d.get("text"), title=d.get("title"), image=d.get("image"), page=page)


def query_to_json(q: Query) -> dict[str, Any]:
    if q.image is not None and not isinstance(q.image, (str, Path)):
        raise DataFormatError(f"query {q.id!r}: only images given by path can travel to Ray workers")
    return {"id": q.id, "text": q.text, "image": str(q.image) if q.image is not None else None}


def query_from_json(d: dict[str, Any]) -> Query:
    return Query(d["id"], text=d.get("text"), image=d.get("image"))


# --- encoding ------------------------------------------------------------------------------------------------
class _EncodeActor:
    def __init__(self, spec: dict[str, Any]) -> None:
        from mmrank.vision.index import encoder_from_spec

        self.encoder = encoder_from_spec(spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        items = [item_from_json(json.loads(s)) for s in batch["item"]]
        vec = self.encoder.encode_items(items, batch_size=len(items))
        return {"i": batch["i"], "vec": vec, "model_id": np.array([self.encoder.model_id] * len(items))}


def encode_items_ray(
    items: Sequence[Item],
    spec: dict[str, Any],
    staging: Path,
    *,
    batch_size: int = 64,
    workers: int = 1,
    address: str | None = None,
) -> tuple[np.ndarray, str]:
    """``(vectors in input order, model_id)``: items encoded by ``workers`` Ray actors, shards kept in ``staging``."""
    init_ray(address)
    rows = [{"i": n, "item": json.dumps(item_to_json(it))} for n, it in enumerate(items)]
    batches = _actor_batches(rows, _EncodeActor, {"spec": spec}, batch_size, workers)
    staging.mkdir(parents=True, exist_ok=True)
    model_id = ""
    for n, batch in enumerate(batches):
        np.save(staging / f"shard-{n:06d}-i.npy", np.asarray(batch["i"], dtype=np.int64), allow_pickle=False)
        np.save(staging / f"shard-{n:06d}-v.npy", np.asarray(batch["vec"], dtype=np.float32), allow_pickle=False)
        model_id = str(batch["model_id"][0])
    return merge_shards(staging, len(items)), model_id


class _ImageEncodeActor:
    """Batch-safe image encoding (an unreadable file is skipped with a warning, as the single-process path does)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from mmrank.vision.index import encoder_from_spec

        self.encoder: Any = encoder_from_spec(spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        paths = [str(x) for x in batch["path"]]
        enc = self.encoder.encode_images(paths, batch_size=len(paths))
        warns = json.dumps(enc.warnings)
        n = len(paths)
        return {
            "i": batch["i"],
            "vec": enc.full(),
            "ok": enc.ok,
            "warnings": np.array([warns] + [""] * (n - 1), dtype=object),  # once per batch
            "model_id": np.array([self.encoder.model_id] * n),
        }


def encode_images_ray(
    paths: Sequence[str | Path],
    spec: dict[str, Any],
    staging: Path,
    *,
    batch_size: int = 32,
    workers: int = 1,
    address: str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """``(vectors, ok, warnings, model_id)`` for image files encoded by ``workers`` Ray actors, in input order:
    ``vectors`` has a row per path (zeros where ``ok`` is false), like ``EncodedImages.full()`` of the local path;
    shards kept in ``staging``. The files must be readable at the same path on every node."""
    init_ray(address)
    rows = [{"i": n, "path": str(p)} for n, p in enumerate(paths)]
    batches = _actor_batches(rows, _ImageEncodeActor, {"spec": spec}, batch_size, workers)
    staging.mkdir(parents=True, exist_ok=True)
    model_id, warnings = "", []
    for n, batch in enumerate(batches):
        ok = np.asarray(batch["ok"], dtype=bool)
        vec = np.asarray(batch["vec"], dtype=np.float32)
        np.save(staging / f"shard-{n:06d}-i.npy", np.asarray(batch["i"], dtype=np.int64), allow_pickle=False)
        np.save(staging / f"shard-{n:06d}-v.npy", np.concatenate([vec, ok[:, None]], axis=1), allow_pickle=False)
        warnings += [w for s in batch["warnings"] if s for w in json.loads(s)]
        model_id = str(batch["model_id"][0])
    merged = merge_shards(staging, len(paths))
    return merged[:, :-1], merged[:, -1].astype(bool), warnings, model_id


def merge_shards(staging: Path, n: int) -> np.ndarray:
    """Shards of ``(row numbers, vectors)`` -> one ``(n, dim)`` matrix in row order; every row exactly once."""
    parts = sorted(staging.glob("shard-*-i.npy"))
    if not parts:
        raise DataFormatError(f"{staging}: the Ray pipeline returned no shard")
    idx = [np.load(p, allow_pickle=False) for p in parts]
    vec = [np.load(str(p).replace("-i.npy", "-v.npy"), allow_pickle=False) for p in parts]
    rows, mat = np.concatenate(idx), np.concatenate(vec)
    if len(rows) != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise DataFormatError(f"{staging}: shards hold {len(rows)} rows for {n} items (lost or duplicated rows)")
    out = np.empty_like(mat)
    out[rows] = mat
    return out


# --- reranking -----------------------------------------------------------------------------------------------
class _RerankActor:
    def __init__(self, name: str, options: dict[str, Any], top_k: int | None) -> None:
        from mmrank.cli.common import build

        self.reranker, self.top_k = build("reranker", name, options), top_k

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        jobs = [json.loads(s) for s in batch["job"]]
        queries = [query_from_json(j["query"]) for j in jobs]
        run = Run(
            Ranking(j["query"]["id"], [Hit(h["id"], h["score"], item_from_json(h["item"])) for h in j["hits"]])
            for j in jobs
        )
        out = self.reranker.rerank(queries, run, top_k=self.top_k)
        results = []
        for j in jobs:
            r = out[j["query"]["id"]]
            results.append(
                json.dumps(
                    {
                        "stage": r.stage,
                        "model_calls": r.model_calls,
                        "fallbacks": r.fallbacks,
                        "hits": [[h.id, h.score] for h in r.hits],
                    }
                )
            )
        return {"i": batch["i"], "result": np.array(results, dtype=object)}


def rerank_ray(
    reranker: str,
    queries: Sequence[Query] | None,
    run: Run,
    *,
    options: dict[str, Any] | None = None,
    top_k: int | None = None,
    batch_size: int = 8,
    workers: int = 1,
    address: str | None = None,
) -> Run:
    """Rerank every ranking of ``run`` with the registered ``reranker`` on ``workers`` Ray actors (``batch_size``
    queries per call); the output run has the input's query order and the single-process path's scores."""
    init_ray(address)
    qmap = {q.id: q for q in queries or []}
    rows = []
    for n, r in enumerate(run.values()):
        q = qmap.get(r.query_id) or r.query
        if q is None:
            raise DataFormatError(f"query {r.query_id!r}: no query text given for its ranking")
        hits = []
        for h in r.hits:
            if h.item is None:
                raise DataFormatError(f"query {r.query_id!r}: hit {h.id!r} has no content (give the corpus)")
            hits.append({"id": h.id, "score": float(h.score), "item": item_to_json(h.item)})
        rows.append({"i": n, "job": json.dumps({"query": query_to_json(q), "hits": hits})})
    if not rows:
        return Run([], name=run.name)
    kwargs = {"name": reranker, "options": dict(options or {}), "top_k": top_k}
    results: dict[int, dict[str, Any]] = {}
    for batch in _actor_batches(rows, _RerankActor, kwargs, batch_size, workers):
        for i, s in zip(batch["i"], batch["result"], strict=True):
            results[int(i)] = json.loads(s)
    rankings = []
    for n, r in enumerate(run.values()):
        res = results[n]
        items = {h.id: h.item for h in r.hits}
        new_hits = [Hit(i, float(s), items.get(i)) for i, s in res["hits"]]
        rankings.append(
            Ranking(
                r.query_id,
                new_hits,
                stage=res["stage"],
                model_calls=res["model_calls"],
                fallbacks=res["fallbacks"],
                query=qmap.get(r.query_id) or r.query,
            )
        )
    return Run(rankings, name=run.name)
