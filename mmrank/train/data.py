"""Training data for yes/no rerankers: one example = a query, its positives and its negatives.

JSONL (one object per line) or any iterable of dicts (e.g. a Hugging Face ``datasets.Dataset``)::

    {"id": "q1",                                   # optional (default: the record number)
     "query": "text" | {"text": ..., "image": "path.png"},
     "positive": ITEM,  or  "positives": [ITEM, ...],
     "negatives": [ITEM, ...]}                     # may be empty only when negatives are mined later

    ITEM = "text" | {"id": ..., "text": ..., "title": ..., "image": "path.png",
                     "page": {"doc_id": ..., "page": 1}}

Every record is validated when read: a bad record raises :class:`~mmrank.errors.DataFormatError` naming its source,
its line and its id. :func:`mine_negatives` fills or extends the negatives from any retriever of the library
(e.g. BM25 top-k minus the positives).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError
from mmrank.types import Item, PageRef, Query


@dataclass(slots=True)
class TrainExample:
    """A query with its positives and negatives (items with text and/or an image or page)."""

    query: Query
    positives: list[Item]
    negatives: list[Item] = field(default_factory=list)


def _where(source: str, n: int, rid: Any) -> str:
    return f"{source} record {n}" + (f" (id {rid!r})" if rid is not None else "")


def _item(obj: Any, where: str, default_id: str) -> Item:
    if isinstance(obj, str):
        if not obj.strip():
            raise DataFormatError(f"{where}: empty item text")
        return Item(id=default_id, text=obj)
    if not isinstance(obj, Mapping):
        raise DataFormatError(f"{where}: an item must be a string or an object, not {type(obj).__name__}")
    unknown = set(obj) - {"id", "text", "title", "image", "page", "meta"}
    if unknown:
        raise DataFormatError(f"{where}: unknown item field(s) {sorted(unknown)}")
    page = obj.get("page")
    if page is not None:
        if not isinstance(page, Mapping) or "doc_id" not in page or not isinstance(page.get("page"), int):
            raise DataFormatError(f"{where}: page must be {{'doc_id': ..., 'page': 1-based int}}")
        if page["page"] < 1:
            raise DataFormatError(f"{where}: page numbers are 1-based, got {page['page']}")
        page = PageRef(str(page["doc_id"]), int(page["page"]))
    text, image = obj.get("text"), obj.get("image")
    if not (isinstance(text, str) and text.strip()) and image is None:
        raise DataFormatError(f"{where}: item has neither text nor image")
    try:
        return Item(
            id=str(obj.get("id", default_id)),
            text=text,
            title=obj.get("title"),
            image=image,
            page=page,
            meta=dict(obj.get("meta") or {}),
        )
    except DataFormatError as e:
        raise DataFormatError(f"{where}: {e}") from e


def _query(obj: Any, where: str, qid: str) -> Query:
    if isinstance(obj, str):
        obj = {"text": obj}
    if not isinstance(obj, Mapping):
        raise DataFormatError(f"{where}: query must be a string or an object, not {type(obj).__name__}")
    try:
        return Query(id=qid, text=obj.get("text"), image=obj.get("image"))
    except DataFormatError as e:
        raise DataFormatError(f"{where}: {e}") from e


def parse_example(rec: Any, *, source: str = "data", n: int = 1, need_negatives: bool = True) -> TrainExample:
    """One validated :class:`TrainExample` from a record dict (see the module docstring)."""
    if not isinstance(rec, Mapping):
        raise DataFormatError(f"{_where(source, n, None)}: expected an object, got {type(rec).__name__}")
    rid = rec.get("id")
    where = _where(source, n, rid)
    if "query" not in rec:
        raise DataFormatError(f"{where}: no 'query'")
    qid = str(rid) if rid is not None else str(n)
    query = _query(rec["query"], where, qid)
    if "positive" in rec and "positives" in rec:
        raise DataFormatError(f"{where}: give 'positive' or 'positives', not both")
    pos = [rec["positive"]] if "positive" in rec else rec.get("positives")
    if not isinstance(pos, list) or not pos or any(p is None for p in pos):
        raise DataFormatError(f"{where}: the query has no positive ('positive' or a non-empty 'positives' list)")
    neg = rec.get("negatives", [])
    if not isinstance(neg, list):
        raise DataFormatError(f"{where}: 'negatives' must be a list")
    if need_negatives and not neg:
        raise DataFormatError(f"{where}: the query has no negatives (add some, or mine them: mine_negatives)")
    positives = [_item(p, f"{where} positive {i + 1}", f"{qid}:pos{i}") for i, p in enumerate(pos)]
    negatives = [_item(x, f"{where} negative {i + 1}", f"{qid}:neg{i}") for i, x in enumerate(neg)]
    return TrainExample(query, positives, negatives)


def parse_examples(records: Iterable[Any], *, source: str = "data", need_negatives: bool = True) -> list[TrainExample]:
    """Validated examples from dicts (a list, a generator, a HF ``datasets.Dataset``); record numbers are 1-based."""
    out = [parse_example(r, source=source, n=i + 1, need_negatives=need_negatives) for i, r in enumerate(records)]
    if not out:
        raise DataFormatError(f"{source}: no training records")
    seen: set[str] = set()
    for i, ex in enumerate(out):
        if ex.query.id in seen:
            raise DataFormatError(f"{_where(source, i + 1, ex.query.id)}: duplicate id")
        seen.add(ex.query.id)
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL file (blank lines skipped); a line that is not a JSON object raises, naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"training data {str(p)!r}: no such file")
    out: list[dict[str, Any]] = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{p}: line {n} is not valid JSON ({e.msg})") from e
            if not isinstance(rec, dict):
                raise DataFormatError(f"{p}: line {n} is not a JSON object")
            out.append(rec)
    return out


def load_examples(data: str | Path | Iterable[Any], *, need_negatives: bool = True) -> list[TrainExample]:
    """Examples from a JSONL path or an iterable of records (e.g. ``datasets.load_dataset(...)["train"]``)."""
    if isinstance(data, (str, Path)):
        return parse_examples(read_jsonl(data), source=str(data), need_negatives=need_negatives)
    return parse_examples(data, source=type(data).__name__, need_negatives=need_negatives)


def mine_negatives(
    examples: Sequence[TrainExample], retriever: Any, *, k: int = 20, n: int | None = None, replace: bool = False
) -> list[TrainExample]:
    """Hard negatives from a retriever: its top-``k`` for each query minus the positives (by id).

    ``retriever`` is any indexed :class:`~mmrank.retrieve.base.Retriever` (``retrieve(queries, k) -> Run`` whose
    hits carry their items). Keeps at most ``n`` mined negatives per query (all of the top-k when ``None``) in rank
    order, after the given ones (``replace=True`` drops those). An example left without negatives raises.
    """
    run = retriever.retrieve([ex.query for ex in examples], k=k)
    out = []
    for ex in examples:
        pos = {p.id for p in ex.positives}
        hits = run[ex.query.id].hits if ex.query.id in run else []
        mined = [h.item for h in hits if h.id not in pos and h.item is not None]
        mined = mined[:n] if n is not None else mined
        negs = mined if replace else ex.negatives + [m for m in mined if m.id not in {x.id for x in ex.negatives}]
        if not negs:
            raise DataFormatError(f"query {ex.query.id!r}: no negatives left after mining top-{k}")
        out.append(TrainExample(ex.query, list(ex.positives), negs))
    return out
