"""A hostile-input corpus, generated (nothing binary is committed): malformed, extreme and adversarial files for
every reader, plus the rule each one must follow.

Each :class:`Case` names a reader (``target``), the files to write, and what must happen: ``"error"`` -- a typed
:class:`~mmrank.errors.MmrankError` whose message names the file (and the line when there is one) -- or ``"ok"``
with an optional check of the documented fallback. :func:`cases` yields them; :func:`write` materialises one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEEP = "[" * 100_000 + "]" * 100_000  # beyond Python's JSON recursion limit
DEEP_OBJ = '{"a":' * 50_000 + "1" + "}" * 50_000


@dataclass
class Case:
    name: str
    target: str  # which reader / pipeline runs it (see tests/hostile/test_hostile_readers.py)
    files: dict[str, bytes]
    expect: str = "error"  # "error" or "ok"
    match: str | None = None  # a substring the error message must contain
    line: int | None = None  # the 1-based line the error must name
    check: Callable[[Any], None] | None = field(default=None, repr=False)


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _jsonl(*objs: Any) -> bytes:
    return _lines(*(o if isinstance(o, str) else json.dumps(o) for o in objs))


def _rank_llm(hits: list[Any], query: Any = "what is bm25") -> bytes:
    return json.dumps([{"query": query, "hits": hits}]).encode()


def _hit(docid: Any = "d1", score: Any = 1.0, **kw: Any) -> dict[str, Any]:
    return {"content": "some text", "qid": "1", "docid": docid, "rank": 1, "score": score, **kw}


def _rankify(ctxs: Any, question: Any = "who wrote it?", **kw: Any) -> bytes:
    return json.dumps([{"question": question, "answers": ["x"], "ctxs": ctxs, **kw}]).encode()


def _eq(expected: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        assert value == expected, (value, expected)

    return check


def cases() -> Iterator[Case]:
    # --- TREC runs ---------------------------------------------------------------------------------------------
    run_ok = "1 Q0 d1 1 2.5 t"
    yield Case("run-5-fields", "run", {"run.txt": _lines("1 Q0 d1 1 2.5")}, match="6 fields", line=1)
    yield Case("run-7-fields", "run", {"run.txt": _lines(run_ok, "1 Q0 d2 2 1 t x")}, match="6 fields", line=2)
    for bad in ("nan", "NaN", "inf", "-inf", "1e400", "-1e999", "abc", "", "0x1p3", "1,5"):
        if bad == "":
            continue
        yield Case(f"run-score-{bad}", "run", {"run.txt": _lines(run_ok, f"1 Q0 d2 2 {bad} t")}, line=2)
    yield Case("run-duplicate-doc", "run", {"run.txt": _lines(run_ok, "1 Q0 d1 2 1.0 t")}, match="duplicate", line=2)
    yield Case("run-empty-file", "run", {"run.txt": b""}, match="empty run")
    yield Case("run-blank-lines", "run", {"run.txt": b"\n\n  \n"}, match="empty run")
    yield Case("run-non-utf8", "run", {"run.txt": b"1 Q0 d1 1 2.5 t\n1 Q0 caf\xe9 2 1.0 t\n"}, match="UTF-8", line=2)
    yield Case(
        "run-bom-crlf-tabs",
        "run",
        {"run.txt": b"\xef\xbb\xbf1\tQ0\td1\t1\t2.5\tt\r\n1 Q0 d2 2 3.5 t\r\n"},
        expect="ok",
        check=lambda run: _eq(["d2", "d1"])(run["1"].ids),
    )
    yield Case(
        "run-tiny-score-gaps-keep-order",
        "run",
        {"run.txt": _lines("1 Q0 a 1 0.30000000000000004 t", "1 Q0 b 2 0.3 t", "1 Q0 c 3 0.29999999999999993 t")},
        expect="ok",
        check=lambda run: _eq(["a", "b", "c"])(run["1"].ids),
    )

    # --- qrels (TREC and BEIR share one grade rule) ----------------------------------------------------------------
    for bad in ("inf", "-inf", "nan", "1e30", "1.9", "two", "99999999999", "0x10", "--1"):
        yield Case(f"trec-qrels-grade-{bad}", "qrels", {"qrels.txt": _lines("1 0 d0 1", f"1 0 d1 {bad}")}, line=2)
        yield Case(
            f"beir-qrels-grade-{bad}",
            "qrels",
            {"qrels.tsv": _lines("query-id\tcorpus-id\tscore", "1\td0\t1", f"1\td1\t{bad}")},
            line=3,
        )
    yield Case(
        "trec-qrels-integral-decimal",
        "qrels",
        {"qrels.txt": _lines("1 0 d1 2.0", "1 0 d2 -1")},
        expect="ok",
        check=_eq({"1": {"d1": 2, "d2": -1}}),
    )
    yield Case(
        "beir-qrels-integral-decimal",
        "qrels",
        {"qrels.tsv": _lines("query-id\tcorpus-id\tscore", "1\td1\t2.0")},
        expect="ok",
        check=_eq({"1": {"d1": 2}}),
    )
    yield Case("trec-qrels-duplicate", "qrels", {"qrels.txt": _lines("1 0 d1 1", "1 0 d1 2")}, "error", "duplicate", 2)
    yield Case(
        "beir-qrels-duplicate",
        "qrels",
        {"qrels.tsv": _lines("query-id\tcorpus-id\tscore", "1\td1\t1", "1\td1\t2")},
        match="duplicate",
        line=3,
    )
    yield Case("beir-qrels-header-only", "qrels", {"qrels.tsv": _lines("query-id\tcorpus-id\tscore")}, match="empty")
    yield Case("beir-qrels-empty-ids", "qrels", {"qrels.tsv": _lines("\td1\t1")}, match="empty", line=1)
    yield Case("qrels-empty-file", "qrels", {"qrels.txt": b""}, match="empty")
    yield Case("qrels-non-utf8", "qrels", {"qrels.txt": b"1 0 d\xff 1\n"}, match="UTF-8", line=1)
    yield Case("qrels-5-fields", "qrels", {"qrels.txt": _lines("1 0 d1 1 x")}, match="4 fields", line=1)

    # --- corpora ---------------------------------------------------------------------------------------------------
    def corpus(*objs: Any) -> dict[str, bytes]:
        return {"corpus.jsonl": _jsonl(*objs)}

    good = {"_id": "d0", "text": "a real document"}
    yield Case("corpus-text-number", "corpus", corpus(good, {"_id": "d1", "text": 42}), match="'text'", line=2)
    yield Case("corpus-text-list", "corpus", corpus(good, {"_id": "d1", "text": ["a", "b"]}), match="'text'", line=2)
    yield Case("corpus-text-object", "corpus", corpus(good, {"_id": "d1", "text": {"x": 1}}), match="'text'", line=2)
    yield Case("corpus-title-number", "corpus", corpus(good, {"_id": "d1", "title": 7, "text": "t"}), line=2)
    yield Case("corpus-id-list", "corpus", corpus(good, {"_id": [1], "text": "t"}), match="'_id'", line=2)
    yield Case("corpus-id-float", "corpus", corpus(good, {"_id": 1.5, "text": "t"}), match="'_id'", line=2)
    yield Case("corpus-id-bool", "corpus", corpus(good, {"_id": True, "text": "t"}), match="'_id'", line=2)
    yield Case("corpus-id-empty", "corpus", corpus(good, {"_id": " ", "text": "t"}), match="empty", line=2)
    yield Case("corpus-duplicate-id", "corpus", corpus(good, good), match="duplicate", line=2)
    yield Case("corpus-deep-json", "corpus", corpus(good, DEEP), match="nested too deeply", line=2)
    yield Case("corpus-deep-object", "corpus", corpus(good, DEEP_OBJ), match="nested too deeply", line=2)
    yield Case("corpus-not-json", "corpus", corpus(good, "{'_id': 1}"), match="not valid JSON", line=2)
    yield Case("corpus-array-line", "corpus", corpus(good, [1, 2]), match="JSON object", line=2)
    yield Case("corpus-empty-file", "corpus", {"corpus.jsonl": b""}, match="empty")
    yield Case("corpus-non-utf8", "corpus", {"corpus.jsonl": b'{"_id": "d\xe9", "text": "x"}\n'}, match="UTF-8", line=1)
    yield Case(
        "corpus-integer-id",
        "corpus",
        corpus({"_id": 7, "text": "seven"}),
        expect="ok",
        check=lambda c: _eq(["7"])(c.ids),
    )
    yield Case(
        "corpus-all-empty-docs-bm25",
        "bm25",
        corpus({"_id": "d0", "text": ""}, {"_id": "d1", "text": "   ", "title": ""}),
        match="indexable term",
    )
    yield Case(
        "corpus-stopwords-only-bm25",
        "bm25",
        corpus({"_id": "d0", "text": "the of and"}, {"_id": "d1", "text": "a an the"}),
        match="indexable term",
    )
    yield Case(
        "items-id-object", "corpus", {"items.jsonl": _jsonl({"id": {"x": 1}, "text": "t"})}, match="'id'", line=1
    )
    yield Case("items-text-number", "corpus", {"items.jsonl": _jsonl({"id": "a", "text": 3.5})}, "error", "'text'", 1)
    yield Case("items-image-number", "corpus", {"items.jsonl": _jsonl({"id": "a", "image": 5})}, "error", "image", 1)
    yield Case("items-image-empty", "corpus", {"items.jsonl": _jsonl({"id": "a", "image": ""})}, "error", "image", 1)
    yield Case(
        "items-page-no-doc", "corpus", {"items.jsonl": _jsonl({"id": "a", "text": "t", "page": 1})}, "error", None, 1
    )
    yield Case(
        "items-page-bad",
        "corpus",
        {"items.jsonl": _jsonl({"id": "a", "text": "t", "doc_id": "x", "page": "one"})},
        match="page",
        line=1,
    )
    yield Case(
        "items-page-zero",
        "corpus",
        {"items.jsonl": _jsonl({"id": "a", "text": "t", "doc_id": "x", "page": 0})},
        match="page",
        line=1,
    )

    # --- queries ---------------------------------------------------------------------------------------------------
    q0 = {"_id": "q0", "text": "fine"}
    yield Case("queries-text-number", "queries", {"queries.jsonl": _jsonl(q0, {"_id": "q1", "text": 2019})}, line=2)
    yield Case("queries-text-list", "queries", {"queries.jsonl": _jsonl(q0, {"_id": "q1", "text": ["a"]})}, line=2)
    yield Case("queries-text-empty", "queries", {"queries.jsonl": _jsonl(q0, {"_id": "q1", "text": " "})}, line=2)
    yield Case("queries-duplicate", "queries", {"queries.jsonl": _jsonl(q0, q0)}, match="duplicate", line=2)
    yield Case("queries-deep", "queries", {"queries.jsonl": _jsonl(q0, DEEP)}, match="nested", line=2)
    yield Case(
        "mm-queries-text-number", "queries", {"q.jsonl": _jsonl({"id": "q1", "text": 12})}, match="'text'", line=1
    )
    yield Case("mm-queries-image-list", "queries", {"q.jsonl": _jsonl({"id": "q1", "image": ["a.jpg"]})}, line=1)
    yield Case("topics-empty-file", "queries", {"topics.tsv": b""}, match="empty topics")
    yield Case("topics-blank-lines", "queries", {"topics.tsv": b"\n \n"}, match="empty topics")
    yield Case("topics-no-tab", "queries", {"topics.tsv": _lines("1 what is bm25")}, match="qid<TAB>text", line=1)
    yield Case("topics-empty-id", "queries", {"topics.tsv": _lines("\twhat is bm25")}, match="empty query id", line=1)
    yield Case("topics-empty-text", "queries", {"topics.tsv": _lines("1\t  ")}, match="empty text", line=1)
    yield Case("topics-duplicate", "queries", {"topics.tsv": _lines("1\ta", " 1 \tb")}, match="duplicate", line=2)
    yield Case(
        "topics-numeric-text",
        "queries",
        {"topics.tsv": _lines("1\t2019")},
        expect="ok",
        check=lambda qs: _eq("2019")(qs[0].text),
    )

    # --- rank_llm JSON ---------------------------------------------------------------------------------------------
    for label, score in (("string", "high"), ("null", None), ("bool", True), ("list", [1]), ("object", {"v": 1})):
        yield Case(f"rank_llm-score-{label}", "rank_llm", {"c.json": _rank_llm([_hit(score=score)])}, match="score")
    yield Case(
        "rank_llm-score-nan",
        "rank_llm",
        {"c.json": b'[{"query": "q", "hits": [' + b'{"docid": "d", "content": "x", "score": NaN}]}]'},
        match="not finite",
    )
    yield Case("rank_llm-score-huge", "rank_llm", {"c.json": _rank_llm([_hit(score="1e999")])}, match="not finite")
    yield Case("rank_llm-not-list", "rank_llm", {"c.json": b'{"query": "q"}'}, match="JSON list")
    yield Case("rank_llm-entry-not-object", "rank_llm", {"c.json": b"[1, 2]"}, match="entry 0")
    yield Case("rank_llm-hits-not-list", "rank_llm", {"c.json": b'[{"query": "q", "hits": "d1"}]'}, match="hits")
    yield Case("rank_llm-hit-string", "rank_llm", {"c.json": b'[{"query": "q", "hits": ["docid"]}]'}, match="object")
    yield Case("rank_llm-docid-list", "rank_llm", {"c.json": _rank_llm([_hit(docid=["d"])])}, match="docid")
    yield Case("rank_llm-query-number", "rank_llm", {"c.json": _rank_llm([_hit()], query=2019)}, match="string")
    yield Case("rank_llm-query-no-text", "rank_llm", {"c.json": _rank_llm([_hit()], query={"qid": "1"})})
    yield Case(
        "rank_llm-duplicate-doc", "rank_llm", {"c.json": _rank_llm([_hit(), _hit(score=0.5)])}, match="duplicate"
    )
    yield Case(
        "rank_llm-duplicate-query",
        "rank_llm",
        {"c.json": json.dumps([{"query": "a", "hits": [_hit()]}, {"query": "b", "hits": [_hit()]}]).encode()},
        match="twice",
    )
    yield Case("rank_llm-deep", "rank_llm", {"c.json": DEEP.encode()}, match="nested")
    yield Case("rank_llm-empty-list", "rank_llm", {"c.json": b"[]"}, match="no queries")
    yield Case("rank_llm-truncated", "rank_llm", {"c.json": _rank_llm([_hit()])[:-5]}, match="not valid JSON")
    yield Case("rank_llm-non-utf8", "rank_llm", {"c.json": b'[{"query": "caf\xe9", "hits": []}]'}, match="UTF-8")
    yield Case(
        "rank_llm-integer-ids-and-missing-score",
        "rank_llm",
        {"c.json": _rank_llm([{"content": "x", "qid": 7, "docid": 11}, {"content": "y", "qid": 7, "docid": 12}])},
        expect="ok",
        check=lambda run: _eq((["11", "12"], [0.0, -1.0]))((run["7"].ids, run["7"].scores)),
    )

    # --- Rankify / DPR JSON ----------------------------------------------------------------------------------------
    ctx = {"id": "c1", "title": "T", "text": "body", "score": 3.0, "has_answer": True}
    yield Case("rankify-score-null", "rankify", {"r.json": _rankify([{**ctx, "score": None}])}, match="score")
    yield Case("rankify-score-text", "rankify", {"r.json": _rankify([{**ctx, "score": "x"}])}, match="score")
    yield Case("rankify-ctxs-not-list", "rankify", {"r.json": _rankify({"id": "c1"})}, match="ctxs")
    yield Case("rankify-ctx-text-number", "rankify", {"r.json": _rankify([{**ctx, "text": 5}])}, match="'text'")
    yield Case("rankify-question-number", "rankify", {"r.json": _rankify([ctx], question=3)}, match="question")
    yield Case("rankify-id-list", "rankify", {"r.json": _rankify([{**ctx, "id": [1]}])}, match="'id'")
    yield Case("rankify-duplicate-ctx", "rankify", {"r.json": _rankify([ctx, ctx])}, match="duplicate")

    # --- labels CSV (vision bench) ---------------------------------------------------------------------------------
    yield Case("labels-non-utf8", "labels", {"labels.csv": b"path,label\nimg/a.png,caf\xe9\n"}, "error", "UTF-8", 2)
    yield Case("labels-single-image", "labels", {"labels.csv": _lines("path,label", "img/a.png,x")}, match="two")
    yield Case(
        "labels-no-pair", "labels", {"labels.csv": _lines("path,label", "img/a.png,x", "img/b.png,y")}, match="two"
    )
    yield Case(
        "labels-duplicate-row",
        "labels",
        {"labels.csv": _lines("path,label", "img/a.png,x", "img/b.png,x", "img/a.png,x")},
        match="listed twice",
        line=4,
    )
    yield Case(
        "labels-duplicate-spelling",
        "labels",
        {"labels.csv": _lines("path,label", "img/a.png,x", "img/b.png,x", "img/./a.png,x")},
        match="listed twice",
        line=4,
    )
    yield Case(
        "labels-dotdot",
        "labels",
        {"labels.csv": _lines("path,label", "img/a.png,x", "../secret.png,x")},
        match="inside the image folder",
        line=3,
    )
    yield Case(
        "labels-absolute",
        "labels",
        {"labels.csv": _lines("path,label", "img/a.png,x", "/etc/passwd,x")},
        match="inside the image folder",
        line=3,
    )
    yield Case("labels-missing-column", "labels", {"labels.csv": _lines("file,label", "img/a.png,x")}, "error", None, 1)
    yield Case("labels-field-count", "labels", {"labels.csv": _lines("path,label", "img/a.png,x,y")}, "error", None, 2)
    yield Case("labels-empty", "labels", {"labels.csv": b""}, match="empty")
    yield Case("labels-nul", "labels", {"labels.csv": b"path,label\nimg/a\x00.png,x\n"}, line=2)
    yield Case(
        "labels-ok-with-missing-file",
        "labels",
        {"labels.csv": _lines("path,label", "img/a.png,x", "img/b.png,x", "img/gone.png,x")},
        expect="ok",
        check=lambda res: _eq((2, 1))((len(res[0]), len(res[2]))),
    )


def write(case: Case, directory: Path) -> Path:
    """Write the case's files under ``directory`` (plus two small images for label cases); return the first file."""
    directory.mkdir(parents=True, exist_ok=True)
    if case.target == "labels":
        from PIL import Image

        (directory / "img").mkdir(exist_ok=True)
        for name, colour in (("a.png", (200, 10, 10)), ("b.png", (10, 200, 10))):
            Image.new("RGB", (8, 8), colour).save(directory / "img" / name)
        (directory.parent / "secret.png").write_bytes(b"not for you")
    first = None
    for name, data in case.files.items():
        p = directory / name
        p.write_bytes(data)
        first = first or p
    assert first is not None
    return first
