"""Page-retrieval benchmark on a folder in the MMLongBench-Doc layout (the layout ``../shared/data/mmlongbench-doc``
uses, and that :func:`load_page_benchmark` reads):

* ``documents/*.pdf``;
* ``queries.jsonl``: one ``{"_id", "text", "doc_id", ...}`` per line (``doc_id`` = the PDF's file name);
* ``page_qrels.tsv``: ``query-id  doc_id  page_1indexed  score`` with a header line.

Two settings, as in MMDocIR (arXiv 2501.08828) and the MM-R5 paper: *in-document* ranks only the pages of the
question's own PDF; *collection* ranks every page of every PDF. Queries without evidence pages are not judged.
Metrics through :func:`mmrank.evaluate` (ir_measures), averaging every judged query (a query whose ranking is empty
counts 0).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.docs.pages import load_pdf_folder
from mmrank.errors import DataFormatError
from mmrank.fusion import rrf
from mmrank.types import Corpus, Hit, Item, Query, Ranking, Run

METRICS = ("recall@1", "recall@5", "ndcg@5")
DEFAULT_METHODS = ("bm25", "dense", "hybrid")
# hybrid, then an LLM reranker (--model) over the hybrid's top ``rerank_depth`` pages (their text)
LLM_RERANKERS = {"hybrid+ql": "query-likelihood", "hybrid+yes-no": "yes-no", "hybrid+mm-r5": "mm-r5"}
SLOW_METHODS = tuple(LLM_RERANKERS)
RERANK_DEPTH = 20
SETTINGS = ("in_document", "collection")


@dataclass
class PageBenchmark:
    pages: list[Item]
    queries: list[Query]  # meta["doc_id"]
    qrels: dict[str, dict[str, int]]  # query id -> {page item id: grade}
    warnings: list[str]


def page_id(doc_id: str, page: int) -> str:
    return f"{doc_id}#{page}"


def load_page_benchmark(
    data: str | Path, *, queries: int | None = None, cache_dir: str | Path | None = None, **pdf_kw: Any
) -> PageBenchmark:
    """Pages (text layer with OCR fallback), judged queries and page qrels of a benchmark folder."""
    d = Path(data)
    for need in ("documents", "queries.jsonl", "page_qrels.tsv"):
        if not (d / need).exists():
            raise DataFormatError(f"a page-retrieval folder needs {need}", d / need)
    qrels: dict[str, dict[str, int]] = {}
    with open(d / "page_qrels.tsv", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if line_no == 1 and row and not row[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(row) != 4:
                raise DataFormatError(
                    "expected 4 tab-separated fields (query-id, doc_id, page, score)", f.name, line_no
                )
            qid, doc, page, score = row
            try:
                pn, grade = int(page), int(score)
            except ValueError as e:
                raise DataFormatError(f"page and score must be integers ({e})", f.name, line_no) from e
            if pn < 1:
                raise DataFormatError(f"pages are 1-indexed, got {pn}", f.name, line_no)
            qrels.setdefault(qid, {})[page_id(doc, pn)] = grade
    qs = []
    with open(d / "queries.jsonl", encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                qid, text, doc = str(rec["_id"]), rec["text"], str(rec["doc_id"])
            except (ValueError, KeyError, TypeError) as e:
                raise DataFormatError(f"bad query record ({type(e).__name__}: {e})", f.name, line_no) from e
            if qid in qrels:
                qs.append(Query(qid, text=text, meta={"doc_id": doc, "answer": rec.get("answer")}))
    if queries is not None:
        qs = qs[:queries]
    keep = {q.id for q in qs}
    pages = load_pdf_folder(d / "documents", cache_dir=cache_dir, **pdf_kw)
    have = {it.page.doc_id for it in pages.items if it.page}
    missing = sorted({q.meta["doc_id"] for q in qs} - have)
    if missing:
        pages.warnings.append(f"{len(missing)} queried documents are missing or unreadable: {', '.join(missing[:5])}")
    return PageBenchmark(pages.items, qs, {q: r for q, r in qrels.items() if q in keep}, pages.warnings)


def _bm25_rankings(pages: Sequence[Item], queries: Sequence[Query], k: int) -> list[Ranking]:
    from mmrank.retrieve.bm25 import BM25Retriever

    try:
        bm = BM25Retriever().index(Corpus(list(pages)))
    except DataFormatError as e:  # a document with no indexable text (a scan with OCR off)
        return [Ranking(q.id, [], stage="bm25", query=q, fallbacks=[str(e)]) for q in queries]
    return list(bm.retrieve(list(queries), k=k).values())


def _dense_rankings(
    vecs: np.ndarray, pages: Sequence[Item], qvecs: np.ndarray, queries: Sequence[Query], k: int
) -> list[Ranking]:
    scores = qvecs @ vecs.T
    out = []
    for i, q in enumerate(queries):
        top = np.argsort(-scores[i], kind="stable")[:k]
        out.append(
            Ranking(q.id, [Hit(pages[j].id, float(scores[i, j]), pages[j]) for j in top], stage="dense", query=q)
        )
    return out


def _by_query(rankings: Sequence[Ranking]) -> list[Ranking]:
    return sorted(rankings, key=lambda r: r.query_id)


def _hybrid(a: Sequence[Ranking], b: Sequence[Ranking]) -> list[Ranking]:
    return [Ranking(x.query_id, rrf([x, y]), stage="hybrid-rrf", query=x.query) for x, y in zip(a, b, strict=True)]


def run_page_retrieval(
    bench: PageBenchmark,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    encoder: Any = None,
    k: int = 100,
    log: Callable[[str], None] | None = None,
    model: str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    settings: Sequence[str] = SETTINGS,
    reranker_kw: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``{method: {"in_document": {metric: mean}, "collection": {...}, "queries": N}}`` for BM25 over page text,
    dense text (``encoder``, default the offline MiniLM) and their reciprocal-rank fusion (RRF, k=60).

    The LLM methods rerank the hybrid's top ``rerank_depth`` pages by their text with the text LLM ``model`` (e.g.
    the offline Qwen2.5-0.5B), the pages below keeping their order: ``"hybrid+ql"`` query likelihood (Zhuang et al.,
    arXiv 2304.13010), ``"hybrid+yes-no"`` the pointwise yes/no head (p(yes), arXiv 2510.14824), ``"hybrid+mm-r5"``
    MM-R5 listwise reasoning (arXiv 2506.12364) with page text in place of page images. ``reranker_kw`` maps a
    method to extra keyword arguments of its reranker (e.g. ``{"hybrid+mm-r5": {"max_new_tokens": 512}}``).
    A reranked method also reports ``"fallbacks"``: how often each recorded fallback fired (e.g. MM-R5 parse
    repairs). ``settings`` limits the evaluation to ``"in_document"`` and/or ``"collection"``."""
    from mmrank import registry
    from mmrank.eval.metrics import evaluate

    unknown = set(methods) - set(DEFAULT_METHODS) - set(SLOW_METHODS)
    if unknown:
        known = ", ".join(DEFAULT_METHODS + SLOW_METHODS)
        raise DataFormatError(f"unknown page-retrieval method(s) {sorted(unknown)}; known: {known}")
    slow = [m for m in methods if m in LLM_RERANKERS]
    if slow and not model:
        raise DataFormatError(f"method {slow[0]!r} needs a causal LM: pass model= (--model)")
    bad = set(settings) - set(SETTINGS)
    if bad or not settings:
        raise DataFormatError(f"settings must be among {SETTINGS}, got {list(settings)}")
    say = log or (lambda _m: None)
    by_doc: dict[str, list[Item]] = {}
    for it in bench.pages:
        by_doc.setdefault(it.page.doc_id if it.page else "", []).append(it)
    qs_by_doc: dict[str, list[Query]] = {}
    for q in bench.queries:
        qs_by_doc.setdefault(q.meta["doc_id"], []).append(q)
    runs: dict[str, dict[str, list[Ranking]]] = {}
    hybrid = "hybrid" in methods or bool(slow)
    need_dense = "dense" in methods or hybrid
    need_bm25 = "bm25" in methods or hybrid
    if need_bm25:
        say("bm25")
        coll = _bm25_rankings(bench.pages, bench.queries, k)
        indoc = [r for doc, qs in qs_by_doc.items() for r in _bm25_rankings(by_doc.get(doc, []) or [], qs, k)]
        runs["bm25"] = {"collection": coll, "in_document": indoc}
    if need_dense:
        say("dense: encoding pages")
        if encoder is None:
            encoder = registry.encoder("sentence-transformers")
        vecs = encoder.encode_items([Item(it.id, text=it.text or " ") for it in bench.pages])
        qvecs = encoder.encode_queries(bench.queries)
        row = {it.id: i for i, it in enumerate(bench.pages)}
        coll = _dense_rankings(vecs, bench.pages, qvecs, bench.queries, k)
        indoc = []
        qrow = {q.id: i for i, q in enumerate(bench.queries)}
        for doc, qs in qs_by_doc.items():
            dp = by_doc.get(doc, [])
            idx = [row[it.id] for it in dp]
            indoc += _dense_rankings(vecs[idx], dp, qvecs[[qrow[q.id] for q in qs]], qs, k)
        runs["dense"] = {"collection": coll, "in_document": indoc}
    if hybrid:
        runs["hybrid"] = {
            s: _hybrid(
                sorted(runs["bm25"][s], key=lambda r: r.query_id), sorted(runs["dense"][s], key=lambda r: r.query_id)
            )
            for s in ("collection", "in_document")
        }
    fallbacks: dict[str, Counter[str]] = {m: Counter() for m in slow}
    for m in slow:
        say(f"{m}: {LLM_RERANKERS[m]} reranking of the hybrid top {rerank_depth}")
        rr = registry.reranker(LLM_RERANKERS[m], model=model, **(reranker_kw or {}).get(m, {}))
        runs[m] = {}
        for s in settings:
            done = rr.rerank(None, Run(runs["hybrid"][s]), top_k=rerank_depth)
            runs[m][s] = list(done.values())
            # one counter per kind of fallback: numbers masked
            fallbacks[m].update(s + ": " + re.sub(r"\b[0-9]+\b", "N", note) for r in runs[m][s] for note in r.fallbacks)
        del rr
    out: dict[str, Any] = {}
    for m in methods:
        out[m] = {}
        for setting, rankings in runs[m].items():
            if setting not in settings:
                continue
            means = evaluate(Run(rankings), bench.qrels, METRICS, complete=True)
            assert isinstance(means, dict)
            out[m][setting] = {name: round(float(means[name]), 4) for name in METRICS}  # type: ignore[arg-type]
        out[m]["queries"] = len(bench.qrels)
        if fallbacks.get(m):
            out[m]["fallbacks"] = dict(fallbacks[m])
    return out
