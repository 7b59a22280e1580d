"""BEIR layout: ``corpus.jsonl`` (``_id, title, text``), ``queries.jsonl`` (``_id, text``), ``qrels/*.tsv``
(header ``query-id corpus-id score``). Thakur et al., "BEIR", arXiv 2104.08663."""

from __future__ import annotations

import warnings
from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.lines import iter_jsonl, iter_lines, require
from mmrank.io.values import parse_grade, parse_id, text_field
from mmrank.types import Corpus, Item, Qrels, Query


def read_beir_corpus(path: str | Path) -> Corpus:
    """Read ``corpus.jsonl``; ``text`` / ``title`` must be strings (or absent), ids strings or integers."""
    items = []
    seen: dict[str, int] = {}
    for n, obj in iter_jsonl(path):
        require(obj, ("_id",), path, n)
        did = parse_id(obj["_id"], path, n, "'_id'")
        text, title = text_field(obj, "text", path, n), text_field(obj, "title", path, n) or None
        if did in seen:
            raise DataFormatError(f"duplicate document id {did!r} (first on line {seen[did]})", path, n)
        seen[did] = n
        if not ((text or "").strip() or (title or "").strip()):
            # Real collections have empty documents (Cranfield 471, 995): keep them, unretrievable, and say so.
            warnings.warn(f"{path}:{n}: document {did!r} is empty; kept with empty text", stacklevel=2)
            text = text or ""
        meta = {k: v for k, v in obj.items() if k not in ("_id", "text", "title")}
        items.append(Item(did, text=text, title=title, meta=meta))
    if not items:
        raise DataFormatError("empty corpus file (no documents)", path)
    return Corpus(items, name=Path(path).parent.name)


def read_beir_queries(path: str | Path) -> list[Query]:
    out, seen = [], set()
    for n, obj in iter_jsonl(path):
        require(obj, ("_id", "text"), path, n)
        qid, text = parse_id(obj["_id"], path, n, "'_id'"), text_field(obj, "text", path, n)
        if text is None or not text.strip():
            raise DataFormatError(f"query {qid!r} has empty text", path, n)
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        meta = obj.get("metadata") or {}
        out.append(Query(qid, text=text, meta=meta if isinstance(meta, dict) else {"metadata": meta}))
    if not out:
        raise DataFormatError("empty queries file (no queries)", path)
    return out


def read_beir_qrels(path: str | Path) -> Qrels:
    """Read a BEIR qrels TSV; the header line is optional. Grades and duplicates follow the TREC reader's rule
    (:func:`mmrank.io.values.parse_grade`; a repeated ``(query-id, corpus-id)`` is an error)."""
    qrels: Qrels = {}
    for n, line in iter_lines(path):
        parts = line.split("\t")
        if n == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) != 3:
            raise DataFormatError(f"a BEIR qrels line needs 3 tab-separated fields, got {len(parts)}", path, n)
        qid, doc, rel = (x.strip() for x in parts)
        if not qid or not doc:
            raise DataFormatError("empty query-id or corpus-id", path, n)
        grade = parse_grade(rel, path, n)
        if doc in qrels.setdefault(qid, {}):
            raise DataFormatError(f"duplicate judgment for query {qid!r}, doc {doc!r}", path, n)
        qrels[qid][doc] = grade
    if not qrels:
        raise DataFormatError("empty qrels file (no judgments)", path)
    return qrels


def beir_paths(root: str | Path, split: str = "test") -> tuple[Path, Path, Path]:
    """``(corpus.jsonl, queries.jsonl, qrels)`` of a BEIR folder (qrels.tsv or qrels/{split}.tsv)."""
    root = Path(root)
    qrels = root / "qrels.tsv"
    if not qrels.is_file():
        qrels = root / "qrels" / f"{split}.tsv"
    return root / "corpus.jsonl", root / "queries.jsonl", qrels
