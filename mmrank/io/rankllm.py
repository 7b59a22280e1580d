"""rank_llm retrieve-results JSON and Rankify / DPR-style pre-retrieved JSON.

* rank_llm (Pradeep et al., arXiv 2505.19284): ``[{"query": str, "hits": [{"content", "qid", "docid", "rank",
  "score"}]}]`` and the newer ``[{"query": {"text", "qid"}, "candidates": [{"docid", "score", "doc": {...}}]}]``.
* Rankify / DPR (Abdallah et al., arXiv 2502.02464; Karpukhin et al., arXiv 2004.04906):
  ``[{"question", "answers", "ctxs": [{"id", "title", "text", "score", "has_answer"}]}]``; ``has_answer``
  becomes a binary qrel.
"""

from __future__ import annotations

import math
import os
import tempfile
from json import dumps
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError
from mmrank.io.lines import read_json
from mmrank.io.values import parse_id, parse_score, text_field
from mmrank.types import Hit, Item, Qrels, Query, Ranking, Run


def _doc_text(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    title = doc.get("title") if isinstance(doc.get("title"), str) and doc.get("title") else None
    for key in ("contents", "content", "text", "segment", "body", "passage"):
        if isinstance(doc.get(key), str):
            return title, doc[key]
    return title, None


def _ranking(qid: str, hits: list[Hit], query: Query, stage: str, path: str | Path, where: str) -> Ranking:
    try:
        return Ranking(qid, hits, stage=stage, query=query)
    except DataFormatError as e:  # duplicate doc ids: name the file and the entry
        raise DataFormatError(f"{where}: {e}", path) from e


def _run(rankings: list[Ranking], name: str, path: str | Path) -> Run:
    if not rankings:
        raise DataFormatError("no queries in the file (empty list)", path)
    try:
        return Run(rankings, name=name)
    except DataFormatError as e:  # a query id twice
        raise DataFormatError(str(e), path) from e


def read_rank_llm_json(path: str | Path, *, name: str | None = None) -> Run:
    """Read rank_llm candidates into a :class:`Run` whose rankings carry their query and items.

    Values follow :mod:`mmrank.io.values`: scores are finite numbers (a missing score becomes ``-rank``, keeping
    the file's order), ids strings or integers, query text a non-empty string.
    """
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError("expected a JSON list of {query, hits|candidates}", path)
    rankings = []
    for i, entry in enumerate(data):
        where = f"entry {i}"
        if not isinstance(entry, dict) or "query" not in entry:
            raise DataFormatError(f"{where} has no 'query'", path)
        hits_raw = entry.get("hits", entry.get("candidates"))
        if not isinstance(hits_raw, list):
            raise DataFormatError(f"{where} has no 'hits' or 'candidates' list", path)
        if not all(isinstance(h, dict) for h in hits_raw):
            raise DataFormatError(f"{where}: every hit must be a JSON object", path)
        q = entry["query"]
        if isinstance(q, dict):
            qid = parse_id(q.get("qid", i), path, None, f"{where}: query 'qid'")
            qtext = q.get("text")
        else:
            qid = parse_id(hits_raw[0].get("qid", i), path, None, f"{where}: 'qid'") if hits_raw else str(i)
            qtext = q
        if not isinstance(qtext, str):
            raise DataFormatError(
                f"{where} (query {qid!r}): query text must be a string, not {type(qtext).__name__}", path
            )
        if not qtext.strip():
            raise DataFormatError(f"{where} (query {qid!r}) has empty query text", path)
        hits = []
        for j, h in enumerate(hits_raw):
            if "docid" not in h:
                raise DataFormatError(f"{where}, hit {j}: no 'docid'", path)
            did = parse_id(h["docid"], path, None, f"{where}, hit {j}: 'docid'")
            doc = h.get("doc") if isinstance(h.get("doc"), dict) else h
            title, text = _doc_text(doc)
            if text is None and title is None:
                raise DataFormatError(f"{where}, hit {j} ({did}): no content", path)
            score = parse_score(h["score"], path, None, f"{where}, hit {j}") if "score" in h else float(-j)
            hits.append(Hit(did, score, Item(did, text=text, title=title)))
        query = Query(qid, text=qtext)
        rankings.append(_ranking(qid, hits, query, "rank_llm-json", path, f"{where} (query {qid!r})"))
    return _run(rankings, name or Path(path).stem, path)


def write_rank_llm_json(run: Run, path: str | Path) -> Path:
    """Write a run with attached items in the rank_llm ``query``/``hits`` layout (atomically)."""
    out = []
    for qid, r in run.items():
        if r.query is None or r.query.text is None:
            raise DataFormatError(f"query {qid!r} has no text; rank_llm JSON needs it")
        hits = []
        for rank, h in enumerate(r.hits, start=1):
            if not math.isfinite(h.score):
                raise DataFormatError(f"query {qid!r}, doc {h.id!r}: score {h.score!r} is not finite; not written")
            content = h.item.full_text if h.item is not None else ""
            hits.append({"content": content, "qid": qid, "docid": h.id, "rank": rank, "score": h.score})
        out.append({"query": r.query.text, "hits": hits})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(out, ensure_ascii=False))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_rankify_json(path: str | Path, *, name: str | None = None) -> tuple[Run, Qrels]:
    """Read Rankify / DPR pre-retrieved JSON into a run (with items and queries) and has_answer qrels."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError("expected a JSON list of {question, answers, ctxs}", path)
    rankings: list[Ranking] = []
    qrels: Qrels = {}
    for i, entry in enumerate(data):
        where = f"entry {i}"
        if not isinstance(entry, dict) or "question" not in entry or "ctxs" not in entry:
            raise DataFormatError(f"{where} needs 'question' and 'ctxs'", path)
        qid = parse_id(entry.get("id", entry.get("qid", i)), path, None, f"{where}: 'id'")
        question = entry["question"]
        if not isinstance(question, str):
            raise DataFormatError(f"{where}: 'question' must be a string, not {type(question).__name__}", path)
        if not question.strip():
            raise DataFormatError(f"{where} has empty question", path)
        ctxs = entry["ctxs"]
        if not isinstance(ctxs, list) or not all(isinstance(c, dict) for c in ctxs):
            raise DataFormatError(f"{where}: 'ctxs' must be a list of JSON objects", path)
        answers = entry.get("answers") or []
        hits = []
        for j, c in enumerate(ctxs):
            if "id" not in c:
                raise DataFormatError(f"{where}, ctx {j}: no 'id'", path)
            did = parse_id(c["id"], path, None, f"{where}, ctx {j}: 'id'")
            text, title = text_field(c, "text", path, None), text_field(c, "title", path, None) or None
            if text is None and title is None:
                raise DataFormatError(f"{where}, ctx {j} ({did}): no 'text' or 'title'", path)
            score = parse_score(c["score"], path, None, f"{where}, ctx {j}") if "score" in c else float(-j)
            item = Item(did, text=text, title=title)
            hits.append(Hit(item.id, score, item))
            if c.get("has_answer"):
                qrels.setdefault(qid, {})[item.id] = 1
        query = Query(qid, text=question, meta={"answers": answers})
        rankings.append(_ranking(qid, hits, query, "rankify-json", path, f"{where} (query {qid!r})"))
    return _run(rankings, name or Path(path).stem, path), qrels
