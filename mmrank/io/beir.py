"""BEIR layout: ``corpus.jsonl`` (``_id, title, text``), ``queries.jsonl`` (``_id, text``), ``qrels/*.tsv``
(header ``query-id corpus-id score``). Thakur et al., "BEIR", arXiv 2104.08663."""

from __future__ import annotations

import warnings
from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.lines import iter_jsonl, iter_lines, require
from mmrank.types import Corpus, Item, Qrels, Query


def read_beir_corpus(path: str | Path) -> Corpus:
    items = []
    for n, obj in iter_jsonl(path):
        require(obj, ("_id",), path, n)
        text, title = obj.get("text"), obj.get("title") or None
        if not (text or title):
            # Real collections have empty documents (Cranfield 471, 995): keep them, unretrievable, and say so.
            warnings.warn(f"{path}:{n}: document {obj['_id']!r} is empty; kept with empty text", stacklevel=2)
            text = ""
        meta = {k: v for k, v in obj.items() if k not in ("_id", "text", "title")}
        items.append(Item(str(obj["_id"]), text=text, title=title, meta=meta))
    return Corpus(items, name=Path(path).parent.name)


def read_beir_queries(path: str | Path) -> list[Query]:
    out, seen = [], set()
    for n, obj in iter_jsonl(path):
        require(obj, ("_id", "text"), path, n)
        qid, text = str(obj["_id"]), obj["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(f"query {qid!r} has empty text", path, n)
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        out.append(Query(qid, text=text, meta=obj.get("metadata") or {}))
    return out


def read_beir_qrels(path: str | Path) -> Qrels:
    """Read a BEIR qrels TSV; the header line is optional."""
    qrels: Qrels = {}
    for n, line in iter_lines(path):
        parts = line.split("\t")
        if n == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) != 3:
            raise DataFormatError(f"a BEIR qrels line needs 3 tab-separated fields, got {len(parts)}", path, n)
        qid, doc, rel = (x.strip() for x in parts)
        try:
            qrels.setdefault(qid, {})[doc] = int(float(rel))
        except ValueError as e:
            raise DataFormatError(f"relevance {rel!r} is not a number", path, n) from e
    return qrels


def beir_paths(root: str | Path, split: str = "test") -> tuple[Path, Path, Path]:
    """``(corpus.jsonl, queries.jsonl, qrels)`` of a BEIR folder (qrels.tsv or qrels/{split}.tsv)."""
    root = Path(root)
    qrels = root / "qrels.tsv"
    if not qrels.is_file():
        qrels = root / "qrels" / f"{split}.tsv"
    return root / "corpus.jsonl", root / "queries.jsonl", qrels
