"""TREC formats: run files (``qid Q0 docid rank score tag``), qrels (``qid iter docid rel``), topics.

Run scores are kept as written; like trec_eval, evaluation orders documents by score. Runs are written with
the shortest decimal that reads back as the same float (``repr``), never rounded, so a run read back ranks and
evaluates exactly as it did in memory. Grades, scores and ids follow the rules of :mod:`mmrank.io.values`.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.lines import iter_lines
from mmrank.io.values import parse_grade, parse_score, trec_token
from mmrank.types import Hit, Qrels, Query, Ranking, Run


def read_trec_run(path: str | Path, *, name: str | None = None) -> Run:
    """Read a 6-column TREC run. Duplicate (qid, docid) pairs raise; hits are ordered by score."""
    per_q: dict[str, list[Hit]] = {}
    seen: set[tuple[str, str]] = set()
    for n, line in iter_lines(path):
        parts = line.split()
        if len(parts) != 6:
            raise DataFormatError(f"a run line needs 6 fields (qid Q0 docid rank score tag), got {len(parts)}", path, n)
        qid, _, doc, _, score, _ = parts
        s = parse_score(score, path, n)
        if (qid, doc) in seen:
            raise DataFormatError(f"duplicate doc id {doc!r} for query {qid!r}", path, n)
        seen.add((qid, doc))
        per_q.setdefault(qid, []).append(Hit(doc, s))
    if not per_q:
        raise DataFormatError("empty run file (no ranking lines)", path)
    rankings = [Ranking(q, sorted(h, key=lambda x: -x.score), stage="trec-run") for q, h in per_q.items()]
    return Run(rankings, name=name or Path(path).stem)


def check_trec_ids(qids: Iterable[str], doc_ids: Iterable[str] = ()) -> None:
    """Raise :class:`DataFormatError` if an id could not be written to (and read back from) a TREC file; call it
    before expensive work whose result will be written as a TREC run."""
    for q in qids:
        trec_token(q, "query id")
    for d in doc_ids:
        trec_token(d, "doc id")


def write_trec_run(run: Run, path: str | Path, *, tag: str | None = None) -> Path:
    """Write a TREC run atomically (temporary file + rename), scores at full precision.

    Query and document ids must be non-empty and free of whitespace, and scores finite: otherwise
    :class:`DataFormatError` before anything is written (such a file would not read back as the same run).
    Whitespace in the tag is replaced by ``_``.
    """
    p = Path(path)
    tag = re.sub(r"\s+", "_", (tag or run.name or "mmrank").strip()) or "mmrank"
    lines = []
    for qid, r in run.items():
        trec_token(qid, "query id")
        for rank, h in enumerate(r.hits, start=1):
            trec_token(h.id, f"query {qid!r}: doc id")
            if not math.isfinite(h.score):
                raise DataFormatError(f"query {qid!r}, doc {h.id!r}: score {h.score!r} is not finite; not written")
            lines.append(f"{qid} Q0 {h.id} {rank} {float(h.score)!r} {tag}\n")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_trec_qrels(path: str | Path) -> Qrels:
    """Read 4-column TREC qrels (``qid iter docid relevance``); grades follow :func:`mmrank.io.values.parse_grade`,
    a repeated ``(qid, docid)`` is an error."""
    qrels: Qrels = {}
    for n, line in iter_lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataFormatError(f"a qrels line needs 4 fields (qid iter docid rel), got {len(parts)}", path, n)
        qid, _, doc, rel = parts
        r = parse_grade(rel, path, n)
        if doc in qrels.setdefault(qid, {}):
            raise DataFormatError(f"duplicate judgment for query {qid!r}, doc {doc!r}", path, n)
        qrels[qid][doc] = r
    if not qrels:
        raise DataFormatError("empty qrels file (no judgments)", path)
    return qrels


def read_topics(path: str | Path) -> list[Query]:
    """Read topics as ``qid<TAB>text`` lines (the Anserini / ir_datasets TSV layout)."""
    queries: list[Query] = []
    seen: set[str] = set()
    for n, line in iter_lines(path):
        qid, sep, text = line.partition("\t")
        qid = qid.strip()
        if not sep:
            raise DataFormatError("a topic line needs 'qid<TAB>text'", path, n)
        if not qid:
            raise DataFormatError("empty query id", path, n)
        if not text.strip():
            raise DataFormatError(f"query {qid!r} has empty text", path, n)
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        queries.append(Query(qid, text=text.strip()))
    if not queries:
        raise DataFormatError("empty topics file (no 'qid<TAB>text' lines)", path)
    return queries
