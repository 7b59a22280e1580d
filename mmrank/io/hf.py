"""Hugging Face ``datasets`` adapters: any dataset with query / document columns loads unchanged."""

from __future__ import annotations

from typing import Any

from mmrank.errors import DataFormatError
from mmrank.types import Corpus, Item, Qrels, Query


def _columns(ds: Any, needed: list[str]) -> None:
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise DataFormatError(f"dataset has no column(s) {missing}; columns are {ds.column_names}")


def corpus_from_hf(
    ds: Any,
    *,
    id_column: str = "_id",
    text_column: str = "text",
    title_column: str | None = None,
    image_column: str | None = None,
) -> Corpus:
    """Items from a ``datasets.Dataset`` (e.g. a BEIR corpus split); images may be PIL or paths."""
    _columns(ds, [c for c in (id_column, text_column, title_column, image_column) if c])
    items = []
    for row in ds:
        items.append(
            Item(
                str(row[id_column]),
                text=row[text_column],
                title=row[title_column] if title_column else None,
                image=row[image_column] if image_column else None,
            )
        )
    return Corpus(items)


def queries_from_hf(ds: Any, *, id_column: str = "_id", text_column: str = "text") -> list[Query]:
    _columns(ds, [id_column, text_column])
    return [Query(str(r[id_column]), text=r[text_column]) for r in ds]


def pairs_from_hf(
    ds: Any,
    *,
    query_column: str = "query",
    doc_column: str = "document",
    label_column: str | None = "label",
    query_id_column: str | None = None,
    doc_id_column: str | None = None,
) -> tuple[list[Query], Corpus, Qrels]:
    """Queries, corpus and qrels from a (query, document[, label]) pair dataset.

    Without id columns, ids are assigned by first appearance (``q0, q1, ...``, ``d0, d1, ...``).
    """
    _columns(ds, [c for c in (query_column, doc_column, label_column, query_id_column, doc_id_column) if c])
    qids: dict[str, str] = {}
    dids: dict[str, str] = {}
    queries: list[Query] = []
    seen: set[str] = set()
    corpus = Corpus()
    qrels: Qrels = {}
    for row in ds:
        qtext, dtext = row[query_column], row[doc_column]
        qid = str(row[query_id_column]) if query_id_column else qids.setdefault(qtext, f"q{len(qids)}")
        did = str(row[doc_id_column]) if doc_id_column else dids.setdefault(dtext, f"d{len(dids)}")
        if qid not in seen:
            seen.add(qid)
            queries.append(Query(qid, text=qtext))
        if did not in corpus:
            corpus.add(Item(did, text=dtext))
        if label_column is not None:
            qrels.setdefault(qid, {})[did] = int(row[label_column])
    return queries, corpus, qrels
