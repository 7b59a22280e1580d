"""Load test of ``mmrank serve``: C concurrent clients x N requests each against a server on loopback, with
micro-batching on (``--max-batch 16``) and off (``--no-batching``: one request per model call), in one run.

Serves a dense MiniLM text index (the real all-MiniLM-L6-v2) built from a JSONL corpus; every request is a
``POST /search`` with a different query, so each one costs a query encoding. Writes a Markdown table to
``benchmarks/results/serve_load.md``.

    python benchmarks/serve_load.py --clients 8 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.serve.conftest import start_server, stop_server  # noqa: E402

WORDS = [
    "cat",
    "dog",
    "paris",
    "france",
    "capital",
    "ranking",
    "search",
    "engine",
    "kitten",
    "puppy",
    "tower",
    "garden",
    "web",
    "passage",
    "model",
]


def corpus_lines(n: int) -> str:
    import random

    rng = random.Random(0)
    return "".join(
        json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(12))}) + "\n" for i in range(n)
    )


async def client(url: str, cid: int, n: int, lat: list[float], errors: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=60) as c:
        for j in range(n):
            q = f"{WORDS[(cid * 7 + j) % len(WORDS)]} {WORDS[(cid + j * 3) % len(WORDS)]} query {cid}-{j}"
            t0 = time.perf_counter()
            r = await c.post(url + "/search", data={"text": q, "k": "10"})
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.text[:100]}")


async def load(url: str, clients: int, n: int) -> dict[str, float]:
    lat: list[float] = []
    errors: list[str] = []
    await client(url, 999, 3, [], [])  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(client(url, c, n, lat, errors) for c in range(clients)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "req_per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "errors": len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50, help="per client")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_load.md"))
    args = ap.parse_args()
    from mmrank.retrieve.text_index import index_corpus

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text(corpus_lines(args.docs))
        index_corpus(corpus, Path(tmp) / "idx", retriever="dense")
        rows = {}
        for label, flags in [("micro-batched (max 16, 5 ms)", []), ("one by one", ["--no-batching"])]:
            proc, url = start_server([str(Path(tmp) / "idx"), *flags])
            try:
                rows[label] = asyncio.run(load(url, args.clients, args.requests))
            finally:
                stop_server(proc)
            print(label, rows[label], flush=True)
    base = rows["one by one"]["req_per_s"]
    lines = [
        f"# serve_load: {args.clients} clients x {args.requests} POST /search, dense MiniLM index of {args.docs} docs",
        "",
        f"Command: `python benchmarks/serve_load.py --clients {args.clients} --requests {args.requests}` (CPU, "
        "loopback, server and clients on the same machine).",
        "",
        "| mode | requests | req/s | p50 ms | p99 ms | errors | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['requests']} | {r['req_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} | {r['req_per_s'] / base:.2f}x |"
        )
    lines += ["", f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
