"""Run a composed-retrieval method (and optionally a reranker) on a CIR benchmark, checkpointing every query.

:func:`run_benchmark` checks the image files first (missing ones: a typed error naming them, before any work, or
with ``on_missing="skip"`` a recorded drop), encodes the gallery once, then processes the queries in chunks. After
each chunk the per-query results (top ``keep`` ids, CIRR's ranked set members, fallbacks, model calls) are appended
to ``<out>/<benchmark>.predictions.jsonl`` and flushed to disk, so a crash or an interrupt never loses finished
queries: a rerun with the same ``out`` and configuration resumes where it stopped (a different configuration is
refused). A chunk that raises is retried query by query; a query that still fails is recorded with its error and
left out of the metrics (``failed`` in the result lists it). Val splits are scored with the official semantics
(:mod:`mmrank.eval.cir`); test splits get the evaluation server's submission files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError, ImageLoadError, MmrankError
from mmrank.eval.cir import (
    CIRBenchmark,
    CIRSample,
    circo_submission,
    cirr_submission,
    fashioniq_average,
)
from mmrank.index.store import atomic_write_bytes
from mmrank.types import Query, Ranking


def _config_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Checkpoint:
    """Append-only JSONL of per-query results, headed by the configuration that produced them."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.key = _config_key(config)
        self.done: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        if path.is_file():
            self._load()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append([{"config": config, "config_key": self.key}])

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):  # a line cut short by a crash: that query is simply redone
                    self.notes.append(f"{self.path}:{n}: incomplete last line ignored")
                    continue
                raise DataFormatError("corrupt checkpoint line", self.path, n) from None
            if n == 1:
                if rec.get("config_key") != self.key:
                    raise DataFormatError(
                        "checkpoint written by another configuration; use another output folder or delete it",
                        self.path,
                    )
                continue
            if "error" not in rec:
                self.done[str(rec["id"])] = rec

    def _append(self, records: Sequence[dict[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        self._append(records)
        for r in records:
            if "error" not in r:
                self.done[str(r["id"])] = r


def _result(sample: CIRSample, ranking: Ranking, bench: CIRBenchmark, keep: int) -> dict[str, Any]:
    ids = ranking.ids
    rec: dict[str, Any] = {"id": sample.id, "ranking": ids[:keep]}
    fallbacks = list(ranking.fallbacks)
    if bench.dataset == "cirr":  # the full gallery was ranked: only unencodable members can be absent
        members = [m for m in sample.members if m != sample.reference]
        present = set(ids)
        lost = [m for m in members if m not in present]
        rec["subset"] = [i for i in ids if i in set(members)] + lost
        if lost:
            fallbacks.append(f"subset: {len(lost)} set member image(s) not in the gallery index, ranked last")
    if fallbacks:
        rec["fallbacks"] = fallbacks
    if ranking.model_calls:
        rec["model_calls"] = ranking.model_calls
    if ranking.query is not None and "target_caption" in ranking.query.meta:
        rec["caption"] = ranking.query.meta["target_caption"]
    return rec


def _process(
    chunk: list[tuple[CIRSample, Query]],
    retriever: Any,
    reranker: Any,
    rerank_k: int | None,
    depth: int | None,
    bench: CIRBenchmark,
    keep: int,
) -> list[dict[str, Any]]:
    queries = [q for _, q in chunk]
    run = retriever.retrieve(queries, k=depth)
    if reranker is not None:
        run = reranker.rerank(queries, run, top_k=rerank_k)
    return [_result(s, run[s.id], bench, keep) for s, _ in chunk]


def run_benchmark(
    bench: CIRBenchmark,
    retriever: Any,
    *,
    reranker: Any = None,
    rerank_k: int | None = None,
    out: str | Path | None = None,
    config: dict[str, Any] | None = None,
    chunk_size: int = 32,
    on_missing: str = "error",
    limit: int | None = None,
    keep: int = 50,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Retrieve (and rerank) every query of ``bench``; metrics on val, submission files on test.

    ``config`` describes the method (stored in the checkpoint header; resuming needs the same one). ``limit`` runs
    only the first ``limit`` queries (a smoke test; metrics then cover those only).
    """
    if on_missing not in ("error", "skip"):
        raise ValueError("on_missing must be 'error' or 'skip'")
    t0 = time.perf_counter()
    say = log or (lambda _s: None)
    samples = bench.samples[:limit] if limit else list(bench.samples)
    missing = bench.missing_images()
    dropped: dict[str, str] = {}
    if missing:
        if on_missing == "error":
            some = ", ".join(f"{i} ({p})" for i, p in list(missing.items())[:5])
            raise ImageLoadError(
                f"{bench.name}: {len(missing)} of {len(bench.gallery)} images missing, e.g. {some}; "
                "check --images or pass on_missing='skip'"
            )
        kept = []
        for s in samples:
            if s.reference in missing:
                dropped[s.id] = f"reference image {s.reference} missing"
            else:
                kept.append(s)
        samples = kept
        say(f"{bench.name}: {len(missing)} images missing; {len(dropped)} queries dropped")
    gallery_ids = [i for i in bench.gallery if i not in missing]
    cfg = {"benchmark": bench.name, "keep": keep, "rerank_k": rerank_k, **(config or {})}
    ckpt = Checkpoint(Path(out) / f"{bench.name}.predictions.jsonl", cfg) if out else None
    done = dict(ckpt.done) if ckpt else {}
    todo = [s for s in samples if s.id not in done]
    say(f"{bench.name}: {len(samples)} queries, {len(done)} already done, gallery {len(gallery_ids)} images")
    failed: dict[str, str] = {}
    if todo:
        retriever.index(bench.corpus(gallery_ids))
        secs = time.perf_counter() - t0
        say(f"{bench.name}: gallery encoded ({len(retriever.skipped)} images skipped) in {secs:.1f}s")
        depth = None if bench.needs_full_ranking else max(keep, rerank_k or 0)  # None: the whole gallery
        for start in range(0, len(todo), chunk_size):
            chunk = [(s, bench.query(s)) for s in todo[start : start + chunk_size]]
            try:
                records = _process(chunk, retriever, reranker, rerank_k, depth, bench, keep)
            except MmrankError:
                records = []
                for pair in chunk:  # isolate the bad record(s)
                    try:
                        records += _process([pair], retriever, reranker, rerank_k, depth, bench, keep)
                    except MmrankError as e:
                        records.append({"id": pair[0].id, "error": f"{type(e).__name__}: {e}"})
            if ckpt:
                ckpt.add(records)
            for r in records:
                if "error" in r:
                    failed[r["id"]] = r["error"]
                else:
                    done[r["id"]] = r
            say(f"{bench.name}: {len(done)}/{len(samples)} queries")
    result: dict[str, Any] = {
        "benchmark": bench.name,
        "split": bench.split,
        "n_queries": len(bench.samples),
        "evaluated": sum(s.id in done for s in samples),
        "failed": failed,
        "dropped": dropped,
        "gallery": len(gallery_ids),
        "gallery_skipped": dict(getattr(retriever, "skipped", {})) if todo else {},
        "model_calls": sum(int(done[s.id].get("model_calls", 0)) for s in samples if s.id in done),
        "fallbacks": _count_fallbacks(done[s.id] for s in samples if s.id in done),
    }
    predictions = {s.id: done[s.id]["ranking"] for s in samples if s.id in done}
    subsets = {s.id: done[s.id]["subset"] for s in samples if s.id in done and "subset" in done[s.id]}
    if bench.has_labels and predictions:
        result["metrics"] = bench.evaluate(predictions, subsets if bench.dataset == "cirr" else None)
    elif not bench.has_labels:
        result["submission"] = _write_submission(bench, samples, predictions, subsets, out, failed or dropped)
    if ckpt:
        result["checkpoint"] = str(ckpt.path)
        result["checkpoint_notes"] = ckpt.notes
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _count_fallbacks(records: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        for f in r.get("fallbacks", ()):
            out[f] = out.get(f, 0) + 1
    return out


def _write_submission(
    bench: CIRBenchmark,
    samples: list[CIRSample],
    predictions: dict[str, list[str]],
    subsets: dict[str, list[str]],
    out: str | Path | None,
    incomplete: dict[str, str],
) -> dict[str, Any]:
    if out is None:
        return {"written": [], "note": "no output folder given"}
    if incomplete or len(predictions) < len(bench.samples):
        return {"written": [], "note": f"not written: {len(bench.samples) - len(predictions)} queries lack results"}
    written = []
    if bench.dataset == "cirr":
        files = cirr_submission(predictions, samples, subset_predictions=subsets)
        for metric, payload in files.items():
            path = Path(out) / f"{bench.name}.{metric}.json"
            atomic_write_bytes(path, json.dumps(payload).encode())
            written.append(str(path))
    elif bench.dataset == "circo":
        path = Path(out) / f"{bench.name}.submission.json"
        atomic_write_bytes(path, json.dumps(circo_submission(predictions, samples)).encode())
        written.append(str(path))
    else:
        return {"written": [], "note": "FashionIQ has no evaluation server; predictions are in the checkpoint"}
    return {"written": written}


def run_fashioniq(benches: Sequence[CIRBenchmark], make_retriever: Callable[[], Any], **kwargs: Any) -> dict:
    """FashionIQ: every category with a fresh retriever (galleries differ), then the category average."""
    per = {b.category or b.name: run_benchmark(b, make_retriever(), **kwargs) for b in benches}
    out: dict[str, Any] = {"benchmark": "fashioniq", "categories": per}
    scored = {c: r["metrics"] for c, r in per.items() if "metrics" in r}
    if scored and len(scored) == len(per):
        out["metrics"] = fashioniq_average(scored)
    return out
