"""rank_llm retrieve-results JSON and Rankify / DPR-style pre-retrieved JSON.

* rank_llm (Pradeep et al., arXiv 2505.19284): ``[{"query": str, "hits": [{"content", "qid", "docid", "rank",
  "score"}]}]`` and the newer ``[{"query": {"text", "qid"}, "candidates": [{"docid", "score", "doc": {...}}]}]``.
* Rankify / DPR (Abdallah et al., arXiv 2502.02464; Karpukhin et al., arXiv 2004.04906):
  ``[{"question", "answers", "ctxs": [{"id", "title", "text", "score", "has_answer"}]}]``; ``has_answer``
  becomes a binary qrel.
"""

from __future__ import annotations

import os
import tempfile
from json import dumps
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError
from mmrank.io.lines import read_json
from mmrank.types import Hit, Item, Qrels, Query, Ranking, Run


def _doc_text(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    for key in ("contents", "content", "text", "segment", "body", "passage"):
        if isinstance(doc.get(key), str):
            return doc.get("title") or None, doc[key]
    return doc.get("title") or None, None


def read_rank_llm_json(path: str | Path, *, name: str | None = None) -> Run:
    """Read rank_llm candidates into a :class:`Run` whose rankings carry their query and items."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError("expected a JSON list of {query, hits|candidates}", path)
    rankings = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "query" not in entry:
            raise DataFormatError(f"entry {i} has no 'query'", path)
        hits_raw = entry.get("hits", entry.get("candidates"))
        if not isinstance(hits_raw, list):
            raise DataFormatError(f"entry {i} has no 'hits' or 'candidates' list", path)
        q = entry["query"]
        if isinstance(q, dict):
            qid, qtext = str(q.get("qid", i)), q.get("text")
        else:
            qid = str(hits_raw[0].get("qid", i)) if hits_raw else str(i)
            qtext = q
        if not isinstance(qtext, str) or not qtext.strip():
            raise DataFormatError(f"entry {i} (query {qid!r}) has empty query text", path)
        hits = []
        for j, h in enumerate(hits_raw):
            if "docid" not in h:
                raise DataFormatError(f"entry {i}, hit {j}: no 'docid'", path)
            doc = h.get("doc") if isinstance(h.get("doc"), dict) else h
            title, text = _doc_text(doc)
            if text is None and title is None:
                raise DataFormatError(f"entry {i}, hit {j} ({h['docid']}): no content", path)
            item = Item(str(h["docid"]), text=text, title=title)
            hits.append(Hit(item.id, float(h.get("score", -j)), item))
        rankings.append(Ranking(qid, hits, stage="rank_llm-json", query=Query(qid, text=qtext)))
    return Run(rankings, name=name or Path(path).stem)


def write_rank_llm_json(run: Run, path: str | Path) -> Path:
    """Write a run with attached items in the rank_llm ``query``/``hits`` layout (atomically)."""
    out = []
    for qid, r in run.items():
        if r.query is None or r.query.text is None:
            raise DataFormatError(f"query {qid!r} has no text; rank_llm JSON needs it")
        hits = []
        for rank, h in enumerate(r.hits, start=1):
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
        if not isinstance(entry, dict) or "question" not in entry or "ctxs" not in entry:
            raise DataFormatError(f"entry {i} needs 'question' and 'ctxs'", path)
        qid = str(entry.get("id", entry.get("qid", i)))
        question = entry["question"]
        if not isinstance(question, str) or not question.strip():
            raise DataFormatError(f"entry {i} has empty question", path)
        answers = entry.get("answers") or []
        hits = []
        for j, c in enumerate(entry["ctxs"]):
            if "id" not in c:
                raise DataFormatError(f"entry {i}, ctx {j}: no 'id'", path)
            item = Item(str(c["id"]), text=c.get("text"), title=c.get("title") or None)
            hits.append(Hit(item.id, float(c.get("score", -j)), item))
            if c.get("has_answer"):
                qrels.setdefault(qid, {})[item.id] = 1
        query = Query(qid, text=question, meta={"answers": answers})
        rankings.append(Ranking(qid, hits, stage="rankify-json", query=query))
    return Run(rankings, name=name or Path(path).stem), qrels
