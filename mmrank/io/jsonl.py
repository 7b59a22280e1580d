"""mmrank's own JSONL layout for any modality.

Items: ``{"id", "text"?, "title"?, "image"? (path, relative to the file), "doc_id"? + "page"?, ...meta}``.
Queries: ``{"id", "text"?, "image"?, ...meta}`` (both text and image make a composed query).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.lines import iter_jsonl
from mmrank.io.values import parse_id, text_field
from mmrank.types import Corpus, Item, PageRef, Query

_ITEM_KEYS = {"id", "_id", "text", "title", "image", "doc_id", "page"}


def _resolve(base: Path, image: object) -> str | None:
    if image is None:
        return None
    if not isinstance(image, str) or not image.strip() or "\0" in image:
        raise TypeError(f"'image' must be a non-empty path string, got {image!r:.60}")
    p = Path(image)
    return str(p if p.is_absolute() else base / p)


def read_items_jsonl(path: str | Path) -> Corpus:
    base = Path(path).parent
    items = []
    seen: dict[str, int] = {}
    for n, obj in iter_jsonl(path):
        raw_id = obj.get("id", obj.get("_id"))
        if raw_id is None:
            raise DataFormatError("item needs an 'id'", path, n)
        iid = parse_id(raw_id, path, n, "'id'")
        if iid in seen:
            raise DataFormatError(f"duplicate item id {iid!r} (first on line {seen[iid]})", path, n)
        seen[iid] = n
        try:
            image = _resolve(base, obj.get("image"))
        except TypeError as e:
            raise DataFormatError(str(e), path, n) from e
        text, title = text_field(obj, "text", path, n), text_field(obj, "title", path, n)
        if not ((text or "").strip() or (title or "").strip() or image):
            raise DataFormatError(f"item {iid!r} has no text, title or image", path, n)
        page = None
        if obj.get("page") is not None:
            if obj.get("doc_id") is None:
                raise DataFormatError("'page' needs 'doc_id'", path, n)
            try:
                page = PageRef(str(obj["doc_id"]), int(obj["page"]))
            except (TypeError, ValueError) as e:
                raise DataFormatError(f"bad page reference: {e}", path, n) from e
        meta = {k: v for k, v in obj.items() if k not in _ITEM_KEYS}
        items.append(Item(iid, text=text, title=title, image=image, page=page, meta=meta))
    if not items:
        raise DataFormatError("empty items file", path)
    return Corpus(items, name=Path(path).stem)


def read_queries_jsonl(path: str | Path) -> list[Query]:
    base = Path(path).parent
    out, seen = [], set()
    for n, obj in iter_jsonl(path):
        raw_id = obj.get("id", obj.get("_id"))
        if raw_id is None:
            raise DataFormatError("query needs an 'id'", path, n)
        qid = parse_id(raw_id, path, n, "'id'")
        text, image = text_field(obj, "text", path, n), obj.get("image")
        if (text is None or not text.strip()) and image is None:
            raise DataFormatError(f"query {qid!r} has empty text and no image", path, n)
        if text is not None and not text.strip():
            text = None  # an image query with blank text is an image query, not a composed one
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        try:
            image_path = _resolve(base, image)
        except TypeError as e:
            raise DataFormatError(str(e), path, n) from e
        meta = {k: v for k, v in obj.items() if k not in ("id", "_id", "text", "image")}
        out.append(Query(qid, text=text, image=image_path, meta=meta))
    if not out:
        raise DataFormatError("empty queries file", path)
    return out


def write_items_jsonl(items: Corpus | list[Item], path: str | Path) -> Path:
    """Write items (images must be paths; they are written as given). Atomic."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    values = items.values() if isinstance(items, Corpus) else items
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for it in values:
                if it.image is not None and not isinstance(it.image, (str, Path)):
                    raise DataFormatError(f"item {it.id!r}: only image paths can be written to JSONL")
                obj: dict[str, object] = {"id": it.id}
                for k, v in (("text", it.text), ("title", it.title), ("image", it.image)):
                    if v is not None:
                        obj[k] = str(v)
                if it.page is not None:
                    obj["doc_id"], obj["page"] = it.page.doc_id, it.page.page
                obj.update(it.meta)
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
