"""PDF rendering throughput at 150 dpi, side by side in one run on the same PDFs: pdf2image (Poppler's pdftoppm,
its default single process), pypdfium2 in one process (a plain loop), and mmrank's renderer
(:func:`mmrank.docs.pdf.render_pages`: PDFium in worker processes). Also the peak memory of reading the whole
folder as page items (text layer with OCR fallback, cached) in a fresh process.

    .venv/bin/python benchmarks/pdf_render.py [--data ../shared/data/mmlongbench-doc/documents] [--pages 400]

Writes ``benchmarks/results/pdf_render.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pick(folder: Path, max_pages: int, min_pages: int = 0) -> list[tuple[Path, int]]:
    import pypdfium2 as pdfium

    out, total = [], 0
    for p in sorted(folder.glob("*.pdf")):
        doc = pdfium.PdfDocument(str(p))
        n = len(doc)
        doc.close()
        if total + n > max_pages or n < min_pages:
            continue
        out.append((p, n))
        total += n
    return out


def run_pdf2image(files: list[tuple[Path, int]], dpi: int) -> int:
    from pdf2image import convert_from_path

    return sum(len(convert_from_path(str(p), dpi=dpi)) for p, _ in files)


def run_pdfium_loop(files: list[tuple[Path, int]], dpi: int) -> int:
    import pypdfium2 as pdfium

    count = 0
    for p, _ in files:
        doc = pdfium.PdfDocument(str(p))
        for i in range(len(doc)):
            page = doc[i]
            page.render(scale=dpi / 72).to_pil().convert("RGB")
            page.close()
            count += 1
        doc.close()
    return count


def run_mmrank(files: list[tuple[Path, int]], dpi: int, workers: int | None = None) -> int:
    from mmrank.docs.pdf import render_pages

    return sum(sum(1 for _ in render_pages(p, dpi=dpi, max_pixels=None, workers=workers)) for p, _ in files)


def run_mmrank_2(files: list[tuple[Path, int]], dpi: int) -> int:
    return run_mmrank(files, dpi, workers=2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mmlongbench-doc" / "documents"))
    ap.add_argument("--pages", type=int, default=400, help="render PDFs (smallest-first order) up to this many pages")
    ap.add_argument("--min-pages", type=int, default=0, help="only PDFs this long (64+ uses render processes)")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "mmrank" / "pages"), help="page-text cache")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pdf_render"))
    args = ap.parse_args()
    files = pick(Path(args.data), args.pages, args.min_pages)
    n_pages = sum(n for _, n in files)
    paths = {"pdf2image (pdftoppm)": run_pdf2image, "pypdfium2, one process": run_pdfium_loop}
    paths["mmrank render_pages (default: processes for long PDFs on 4+ CPUs)"] = run_mmrank
    paths["mmrank render_pages, workers=2 (2 processes, 4-page tasks)"] = run_mmrank_2
    times: dict[str, list[float]] = {k: [] for k in paths}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, fn in paths.items():
            t = time.perf_counter()
            assert fn(files, args.dpi) == n_pages
            times[name].append(time.perf_counter() - t)
    base = min(times["pdf2image (pdftoppm)"])
    rows = [{"path": k, "pages_per_s": n_pages / min(v), "vs_pdf2image": base / min(v)} for k, v in times.items()]
    # peak memory of reading the whole folder as page items, in a fresh process
    code = (
        "import resource,sys;from mmrank.docs import load_pdf_folder;"
        f"p=load_pdf_folder({str(args.data)!r},progress=False,cache_dir={args.cache_dir!r});"
        "hwm=[int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0];"
        "print(len(p.items), hwm,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    n_items, self_kb, child_kb = map(int, res.stdout.split()[-3:])
    index_s = time.perf_counter() - t
    meta = {
        "command": f"python benchmarks/pdf_render.py --pages {args.pages} --min-pages {args.min_pages} "
        f"--dpi {args.dpi} --rounds {args.rounds}",
        "pdfs": f"{len(files)} PDFs, {n_pages} pages (MMLongBench-Doc, smallest-first up to --pages)",
        "machine": f"{platform.machine()} cpu, {os.cpu_count()} cores",
        "load_avg_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "folder_as_items": f"{n_items} page items; peak RSS main process {self_kb / 1024:.0f} MiB, largest worker "
        f"{child_kb / 1024:.0f} MiB; {index_s:.1f} s (page texts and OCR read from the cache when present: "
        f"{args.cache_dir})",
    }
    lines = [
        f"# PDF rendering at {args.dpi} dpi (best of {args.rounds} interleaved rounds)",
        "",
        *[f"- {k}: {v}" for k, v in meta.items()],
        "",
        "| renderer | pages / s | vs pdf2image |",
        "|---|---|---|",
        *[f"| {r['path']} | {r['pages_per_s']:.1f} | **{r['vs_pdf2image']:.2f}x** |" for r in rows],
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
