"""Answer a file of questions over a folder of PDFs (or one PDF), with cited pages, as JSONL.

    python text/ask_pdfs.py --pdfs reports/ --questions questions.jsonl --model /models/qwen2.5-0.5b-instruct \\
        --out answers.jsonl [--k 3] [--cache-dir ~/.cache/mmrank/pages]

``questions.jsonl``: one ``{"id": ..., "question": ..., "doc_id": optional}`` per line (a plain text file with one
question per line works too). With ``doc_id`` (a PDF's path relative to the folder) the
pages of that PDF only are searched. The PDFs are read once (text layer, OCR where needed); one answer per line is
written as soon as it is ready, so an interrupted run keeps what it finished and a rerun skips answered ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmrank.docs import load_pdf_folder, pdf_pages
from mmrank.docs.qa import answer_from_pages, load_answerer, retrieve_pages


def read_questions(path: Path) -> list[dict]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            rec = json.loads(line)
            out.append({"id": str(rec.get("id", i)), "question": rec["question"], "doc_id": rec.get("doc_id")})
        else:
            out.append({"id": str(i), "question": line.strip(), "doc_id": None})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdfs", required=True, type=Path)
    ap.add_argument("--questions", required=True, type=Path)
    ap.add_argument("--model", required=True, help="text LLM or VLM: hub id or local folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--cache-dir")
    args = ap.parse_args()
    pages = (
        load_pdf_folder(args.pdfs, cache_dir=args.cache_dir)
        if args.pdfs.is_dir()
        else pdf_pages(args.pdfs, cache_dir=args.cache_dir)
    )
    for w in pages.warnings:
        print(f"warning: {w}", file=sys.stderr)
    by_doc: dict[str, list] = {}
    for it in pages.items:
        by_doc.setdefault(it.page.doc_id, []).append(it)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line.strip()}
    lm = load_answerer(args.model)
    with open(args.out, "a", encoding="utf-8") as f:
        for q in read_questions(args.questions):
            if q["id"] in done:
                continue
            pool = by_doc.get(q["doc_id"], []) if q["doc_id"] else pages.items
            if not pool:
                rec = {"id": q["id"], "question": q["question"], "error": f"no pages for doc_id {q['doc_id']!r}"}
            else:
                hits = retrieve_pages(q["question"], pool, k=args.k)
                rec = (
                    {"id": q["id"], **answer_from_pages(q["question"], hits, lm).as_dict()}
                    if hits
                    else {"id": q["id"], "question": q["question"], "answer": "Not answerable", "citations": []}
                )
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            print(f"{q['id']}: {rec.get('answer', rec.get('error'))!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
