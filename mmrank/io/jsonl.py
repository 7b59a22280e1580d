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
from mmrank.types import Corpus, Item, PageRef, Query

_ITEM_KEYS = {"id", "_id", "text", "title", "image", "doc_id", "page"}


def _resolve(base: Path, image: object) -> str | None:
    if image is None:
        return None
    if not isinstance(image, str):
        raise TypeError("image must be a path string")
    p = Path(image)
    return str(p if p.is_absolute() else base / p)


def read_items_jsonl(path: str | Path) -> Corpus:
    base = Path(path).parent
    items = []
    for n, obj in iter_jsonl(path):
        iid = obj.get("id", obj.get("_id"))
        if iid is None or str(iid) == "":
            raise DataFormatError("item needs an 'id'", path, n)
        try:
            image = _resolve(base, obj.get("image"))
        except TypeError as e:
            raise DataFormatError(str(e), path, n) from e
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise DataFormatError("'text' must be a string", path, n)
        if not (text or obj.get("title") or image):
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
        items.append(Item(str(iid), text=text, title=obj.get("title"), image=image, page=page, meta=meta))
    return Corpus(items, name=Path(path).stem)


def read_queries_jsonl(path: str | Path) -> list[Query]:
    base = Path(path).parent
    out, seen = [], set()
    for n, obj in iter_jsonl(path):
        qid = obj.get("id", obj.get("_id"))
        if qid is None:
            raise DataFormatError("query needs an 'id'", path, n)
        text, image = obj.get("text"), obj.get("image")
        if (text is None or not str(text).strip()) and image is None:
            raise DataFormatError(f"query {qid!r} has empty text and no image", path, n)
        if str(qid) in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(str(qid))
        meta = {k: v for k, v in obj.items() if k not in ("id", "_id", "text", "image")}
        out.append(Query(str(qid), text=text, image=_resolve(base, image), meta=meta))
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
