"""Ray Data vs single process: encode one corpus into a dense MiniLM text index with the single-process path and
with ``engine="ray"`` at 1 and 2 workers (a local Ray runtime), check the vectors are identical (max |diff| <=
1e-5, same ids), and report items/s and Ray's overhead. Writes ``benchmarks/results/ray_scale.md``.

    python benchmarks/ray_scale.py --docs 2000

On a machine with few cores the Ray runs pay actor start-up (each actor loads the model) and serialisation; the
table says what this machine measured, no more.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ray_scale.md"))
    args = ap.parse_args()
    import os

    from mmrank.retrieve.text_index import TextSearch, index_corpus
    from mmrank.scale.ray_engine import init_ray

    rng = random.Random(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text(
            "".join(
                json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))})
                + "\n"
                for i in range(args.docs)
            )
        )
        t0 = time.perf_counter()
        index_corpus(corpus, Path(tmp) / "local", retriever="dense", batch_size=args.batch_size)
        local_s = time.perf_counter() - t0
        ref = TextSearch(Path(tmp) / "local").index
        rows.append(("single process", local_s, 0.0, True))
        init_ray(num_cpus=os.cpu_count())
        for w in [int(x) for x in args.workers.split(",")]:
            out = Path(tmp) / f"ray{w}"
            t0 = time.perf_counter()
            index_corpus(corpus, out, retriever="dense", engine="ray", workers=w, batch_size=args.batch_size)
            secs = time.perf_counter() - t0
            got = TextSearch(out).index
            same = got.ids == ref.ids and float(np.abs(got.vectors - ref.vectors).max()) <= 1e-5  # type: ignore[attr-defined]
            rows.append((f"Ray, {w} worker(s)", secs, secs - local_s, same))
            print(rows[-1], flush=True)
    lines = [
        f"# ray_scale: dense MiniLM index of {args.docs} synthetic passages, batch {args.batch_size}",
        "",
        f"Command: `python benchmarks/ray_scale.py --docs {args.docs}` on this machine ({os.cpu_count()} CPU cores, "
        "shared; local Ray runtime started once, before the Ray rows).",
        "",
        "| path | seconds | items/s | vs single process | identical vectors |",
        "|---|---|---|---|---|",
    ]
    for name, secs, over, same in rows:
        lines.append(
            f"| {name} | {secs:.1f} | {args.docs / secs:.1f} | {'' if name == 'single process' else f'{over:+.1f} s'}"
            f" | {'yes' if same else 'NO'} |"
        )
    lines += ["", f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
