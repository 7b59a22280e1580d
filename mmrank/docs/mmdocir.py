"""MMDocIR (Dong et al., arXiv 2501.08828) in its published layout (huggingface.co/datasets/MMDocIR/
MMDocIR_Evaluation_Dataset and github.com/MMDocRAG/MMDocIR/dataset):

* ``MMDocIR_pages.parquet``: one row per page screenshot -- ``doc_name``, ``domain``, ``passage_id``,
  ``image_path``, ``image_binary`` (JPEG bytes), ``ocr_text``, ``vlm_text``;
* ``MMDocIR_annotations.jsonl``: one line per document -- ``doc_name``, ``domain``, ``page_indices`` (first and
  last row of the document in the pages parquet, both inclusive), ``questions`` (``Q``, ``A``, ``page_id``: the
  evidence pages, **0-based** within the document, ``type``, ``layout_mapping``).

Pages become ``Item("<doc_name>#<n>", text=<vlm_text or ocr_text>, image=<JPEG bytes>, page=PageRef(doc_name, n))``
with 1-based ``n`` (= ``page_id + 1``), like every page item of mmrank; questions become queries with
``meta["doc_id"]``; the metrics are MMDocIR's page recall (:func:`mmrank.retrieve.presets.page_recall`: micro over
questions, macro over documents) or any :func:`mmrank.evaluate` metric, in document or across the collection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from mmrank.docs.bench import PageBenchmark, page_id
from mmrank.errors import DataFormatError
from mmrank.types import Item, PageRef, Query

PAGES = "MMDocIR_pages.parquet"
ANNOTATIONS = "MMDocIR_annotations.jsonl"


def load_mmdocir(
    root: str | Path,
    *,
    text: Literal["vlm_text", "ocr_text"] = "vlm_text",
    images: bool = False,
    documents: int | None = None,
) -> PageBenchmark:
    """Pages, questions and page qrels of MMDocIR from a folder holding the parquet and the annotations file.

    ``text`` picks the page text the paper's text retrievers use (VLM descriptions by default, or OCR);
    ``images=True`` also keeps each page's JPEG bytes (about 10 GB for the full set; off by default);
    ``documents`` keeps the first N documents of the annotations file.
    """
    import pyarrow.parquet as pq

    d = Path(root)
    for name in (PAGES, ANNOTATIONS):
        if not (d / name).is_file():
            raise DataFormatError(f"MMDocIR needs {name} (see datasets/mmdocir.md)", d / name)
    if text not in ("vlm_text", "ocr_text"):
        raise DataFormatError(f"text must be 'vlm_text' or 'ocr_text', got {text!r}")
    cols = ["doc_name", text] + (["image_binary"] if images else [])
    table = pq.read_table(d / PAGES, columns=cols)
    missing = set(cols) - set(table.column_names)
    if missing:
        raise DataFormatError(f"the pages parquet lacks column(s) {sorted(missing)}", d / PAGES)
    names = table.column("doc_name").to_pylist()
    texts = table.column(text).to_pylist()
    blobs: list[Any] = table.column("image_binary").to_pylist() if images else [None] * len(names)
    pages: list[Item] = []
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    with open(d / ANNOTATIONS, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if documents is not None and line_no > documents:
                break
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                doc, (first, last) = str(rec["doc_name"]), (int(rec["page_indices"][0]), int(rec["page_indices"][1]))
                qs = rec["questions"]
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise DataFormatError(f"bad annotation record ({type(e).__name__}: {e})", f.name, line_no) from e
            if not 0 <= first <= last < len(names):
                raise DataFormatError(
                    f"page_indices {first}..{last} outside the parquet's {len(names)} rows", f.name, line_no
                )
            if names[first] != doc or names[last] != doc:
                raise DataFormatError(
                    f"page_indices {first}..{last} point at {names[first]!r}..{names[last]!r}, not {doc!r}",
                    f.name,
                    line_no,
                )
            n_pages = last - first + 1
            for i, row in enumerate(range(first, last + 1), start=1):
                pages.append(
                    Item(
                        page_id(doc, i),
                        text=texts[row] or "",
                        image=blobs[row],
                        page=PageRef(doc, i),
                        meta={"text_source": text, "domain": rec.get("domain")},
                    )
                )
            for j, q in enumerate(qs):
                qid = f"{line_no}-{j}"
                try:
                    evidence = [int(p) for p in q["page_id"]]
                    question = str(q["Q"])
                except (KeyError, TypeError, ValueError) as e:
                    raise DataFormatError(f"question {j}: bad record ({type(e).__name__}: {e})", f.name, line_no) from e
                bad = [p for p in evidence if not 0 <= p < n_pages]
                if bad:
                    raise DataFormatError(
                        f"question {j}: page_id {bad} outside the document's {n_pages} pages", f.name, line_no
                    )
                if not evidence or not question.strip():
                    continue
                queries.append(
                    Query(qid, text=question, meta={"doc_id": doc, "answer": q.get("A"), "type": q.get("type")})
                )
                qrels[qid] = {page_id(doc, p + 1): 1 for p in evidence}  # page_id is 0-based
    return PageBenchmark(pages, queries, qrels, [])
