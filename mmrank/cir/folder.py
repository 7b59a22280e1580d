"""Composed retrieval on your own images: a folder of images (the gallery) and a JSONL file of queries.

Each query line is ``{"id": ..., "reference": "path/to/ref.jpg", "text": "make it red", "target": ...}``;
``text`` may be spelled ``modification``; ``target`` (optional) is one path or a list of paths of the correct
images. Paths are relative to the image folder (or absolute). Gallery ids are the images' paths relative to the
folder (POSIX style), so a reference or target inside the folder is matched by id. By default a query's own
reference image is excluded from its ranking, as CIRR does. Errors name the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmrank.encoders.images import list_image_files
from mmrank.errors import DataFormatError
from mmrank.types import Corpus, Item, Query


def folder_gallery(folder: str | Path) -> tuple[Corpus, list[str]]:
    """Every image under ``folder`` as an item (id = relative POSIX path) and a warning per skipped file."""
    root = Path(folder)
    files, warnings = list_image_files(root)
    if not files:
        raise DataFormatError("no image files in the gallery folder", root)
    return Corpus((Item(p.relative_to(root).as_posix(), image=p) for p in files), name=root.name), warnings


def _rel_id(root: Path, value: Any, path: Path, line: int, what: str) -> tuple[str, Path]:
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(f"{what} must be a non-empty path string", path, line)
    p = Path(value)
    full = p if p.is_absolute() else root / p
    try:
        ident = full.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        ident = str(full)
    return ident, full


def load_cir_queries(path: str | Path, image_root: str | Path, *, exclude_reference: bool = True) -> list[Query]:
    """Composed queries from a JSONL file; reference files must exist (targets are only ids)."""
    path, root = Path(path), Path(image_root)
    if not path.is_file():
        raise DataFormatError("queries file not found", path)
    out, seen = [], set()
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"invalid JSON ({e.msg})", path, n) from e
        if not isinstance(rec, dict):
            raise DataFormatError("each line must be a JSON object", path, n)
        qid = str(rec.get("id", "")).strip()
        if not qid:
            raise DataFormatError("query without an id", path, n)
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        ref_id, ref = _rel_id(root, rec.get("reference"), path, n, f"query {qid!r}: reference")
        if not ref.is_file():
            raise DataFormatError(f"query {qid!r}: reference image {ref} not found", path, n)
        text = rec.get("text", rec.get("modification"))
        if not isinstance(text, str):
            raise DataFormatError(f"query {qid!r}: 'text' (the modification) must be a string", path, n)
        targets = rec.get("target")
        tlist = [] if targets is None else [targets] if isinstance(targets, str) else targets
        if not isinstance(tlist, list):
            raise DataFormatError(f"query {qid!r}: 'target' must be a path or a list of paths", path, n)
        meta: dict[str, Any] = {"reference_id": ref_id, "source": f"{path}:{n}"}
        if tlist:
            meta["targets"] = [_rel_id(root, t, path, n, f"query {qid!r}: target")[0] for t in tlist]
        if exclude_reference:
            meta["exclude"] = [ref_id]
        out.append(Query(qid, text=text, image=ref, meta=meta))
    if not out:
        raise DataFormatError("no queries in the file", path)
    return out


def cir_search(corpus: Corpus, queries: list[Query], retriever: Any, *, reranker: Any = None, k: int = 10) -> Any:
    """Index ``corpus``, retrieve the top ``max(k, reranker.k)`` per query, rerank if asked; a :class:`Run` of the
    top ``k``."""
    retriever.index(corpus)
    depth = max(k, int(getattr(reranker, "k", 0) or 0))
    run = retriever.retrieve(queries, k=depth)
    if reranker is not None:
        run = reranker.rerank(queries, run)
    return run.top(k)


def target_recall(run: Any, queries: list[Query], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, Any]:
    """Recall@K (percent) over the queries whose ``meta["targets"]`` is known: any target in the top K."""
    judged = [q for q in queries if q.meta.get("targets") and q.id in run]
    out: dict[str, Any] = {"n_queries": len(judged)}
    for k in ks:
        hit = sum(bool(set(map(str, q.meta["targets"])) & set(run[q.id].ids[:k])) for q in judged)
        out[f"R@{k}"] = 100.0 * hit / len(judged) if judged else float("nan")
    return out
