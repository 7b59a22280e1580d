"""TREC formats: run files (``qid Q0 docid rank score tag``), qrels (``qid iter docid rel``), topics.

Run scores are kept as written; like trec_eval, evaluation orders documents by score.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.lines import iter_lines
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
        try:
            s = float(score)
        except ValueError as e:
            raise DataFormatError(f"score {score!r} is not a number", path, n) from e
        if (qid, doc) in seen:
            raise DataFormatError(f"duplicate doc id {doc!r} for query {qid!r}", path, n)
        seen.add((qid, doc))
        per_q.setdefault(qid, []).append(Hit(doc, s))
    rankings = [Ranking(q, sorted(h, key=lambda x: -x.score), stage="trec-run") for q, h in per_q.items()]
    return Run(rankings, name=name or Path(path).stem)


def write_trec_run(run: Run, path: str | Path, *, tag: str | None = None) -> Path:
    """Write a TREC run atomically (temporary file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tag = (tag or run.name or "mmrank").replace(" ", "_")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for qid, r in run.items():
                for rank, h in enumerate(r.hits, start=1):
                    f.write(f"{qid} Q0 {h.id} {rank} {h.score:.6f} {tag}\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_trec_qrels(path: str | Path) -> Qrels:
    """Read 4-column TREC qrels (``qid iter docid relevance``); relevance must be an integer."""
    qrels: Qrels = {}
    for n, line in iter_lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataFormatError(f"a qrels line needs 4 fields (qid iter docid rel), got {len(parts)}", path, n)
        qid, _, doc, rel = parts
        try:
            r = int(rel)
        except ValueError as e:
            raise DataFormatError(f"relevance {rel!r} is not an integer", path, n) from e
        if doc in qrels.setdefault(qid, {}):
            raise DataFormatError(f"duplicate judgment for query {qid!r}, doc {doc!r}", path, n)
        qrels[qid][doc] = r
    return qrels


def read_topics(path: str | Path) -> list[Query]:
    """Read topics as ``qid<TAB>text`` lines (the Anserini / ir_datasets TSV layout)."""
    queries: list[Query] = []
    seen: set[str] = set()
    for n, line in iter_lines(path):
        qid, sep, text = line.partition("\t")
        if not sep:
            raise DataFormatError("a topic line needs 'qid<TAB>text'", path, n)
        if not text.strip():
            raise DataFormatError(f"query {qid!r} has empty text", path, n)
        if qid in seen:
            raise DataFormatError(f"duplicate query id {qid!r}", path, n)
        seen.add(qid)
        queries.append(Query(qid.strip(), text=text.strip()))
    return queries
