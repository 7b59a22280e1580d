"""Readers and writers. ``load_*`` pick the format from the path; the specific readers are exported too."""

from __future__ import annotations

from pathlib import Path

from mmrank.errors import DataFormatError
from mmrank.io.beir import beir_paths, read_beir_corpus, read_beir_qrels, read_beir_queries
from mmrank.io.hf import corpus_from_hf, pairs_from_hf, queries_from_hf
from mmrank.io.jsonl import read_items_jsonl, read_queries_jsonl, write_items_jsonl
from mmrank.io.lines import iter_lines
from mmrank.io.rankllm import read_rank_llm_json, read_rankify_json, write_rank_llm_json
from mmrank.io.trec import read_topics, read_trec_qrels, read_trec_run, write_trec_run
from mmrank.types import Corpus, Qrels, Query, Run

__all__ = [
    "beir_paths",
    "corpus_from_hf",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "load_run",
    "pairs_from_hf",
    "queries_from_hf",
    "read_beir_corpus",
    "read_beir_qrels",
    "read_beir_queries",
    "read_items_jsonl",
    "read_queries_jsonl",
    "read_rank_llm_json",
    "read_rankify_json",
    "read_topics",
    "read_trec_qrels",
    "read_trec_run",
    "write_items_jsonl",
    "write_rank_llm_json",
    "write_trec_run",
]


def _is_beir_dir(p: Path) -> bool:
    return p.is_dir() and (p / "corpus.jsonl").is_file()


def load_corpus(path: str | Path) -> Corpus:
    """A BEIR folder or ``corpus.jsonl`` (``_id``), or an mmrank items JSONL (``id``)."""
    p = Path(path)
    if _is_beir_dir(p):
        p = p / "corpus.jsonl"
    if p.suffix != ".jsonl":
        raise DataFormatError("corpus must be a BEIR folder or a .jsonl file", p)
    for _, line in iter_lines(p):
        return read_beir_corpus(p) if '"_id"' in line else read_items_jsonl(p)
    raise DataFormatError("empty corpus file", p)


def load_queries(path: str | Path) -> list[Query]:
    """A BEIR folder / ``queries.jsonl``, an mmrank queries JSONL, or a ``qid<TAB>text`` topics file."""
    p = Path(path)
    if _is_beir_dir(p):
        p = p / "queries.jsonl"
    if p.suffix == ".jsonl":
        for _, line in iter_lines(p):
            return read_beir_queries(p) if '"_id"' in line else read_queries_jsonl(p)
        raise DataFormatError("empty queries file", p)
    return read_topics(p)


def load_qrels(path: str | Path) -> Qrels:
    """TREC qrels (4 columns) or BEIR qrels TSV (3 columns, optional header); a BEIR folder works too."""
    p = Path(path)
    if p.is_dir():
        p = beir_paths(p)[2]
    for _, line in iter_lines(p):
        fields = line.split("\t") if "\t" in line else line.split()
        return read_beir_qrels(p) if len(fields) == 3 else read_trec_qrels(p)
    raise DataFormatError("empty qrels file", p)


def load_run(path: str | Path, corpus: Corpus | None = None) -> Run:
    """A TREC run (items attached from ``corpus`` if given), rank_llm JSON or Rankify JSON."""
    p = Path(path)
    if p.suffix == ".json":
        with open(p, "rb") as f:
            head = f.read(4096)
        run = read_rankify_json(p)[0] if b'"ctxs"' in head or b'"question"' in head else read_rank_llm_json(p)
    else:
        run = read_trec_run(p)
    return run.attach(corpus) if corpus is not None else run
