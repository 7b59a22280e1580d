"""``mmrank demo``: the main job, offline, on the bundled sample with real weights.

Text: BM25 (bm25s) top-10 -> MiniLM bi-encoder rerank -> nDCG@10 / MAP. Images: the vision demo
(real MobileNetV2 ImageNet weights over scikit-image's photos), when its dependencies are present.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


def sample_path() -> Path:
    """Folder of the bundled text sample (BEIR layout)."""
    return Path(str(resources.files("mmrank") / "data" / "sample"))


def run_text_demo(top: int = 3) -> tuple[dict[str, Any], list[str]]:
    from mmrank.eval import evaluate
    from mmrank.io import load_corpus, load_qrels, load_queries
    from mmrank.pipeline import Pipeline

    root = sample_path()
    corpus, queries, qrels = load_corpus(root), load_queries(root), load_qrels(root)
    pipe = Pipeline("bm25", ["bi-encoder"], k=10).index(corpus)
    runs = pipe.run(queries, return_all=True)
    assert isinstance(runs, list)
    metrics = {run.name: evaluate(run, qrels, ["ndcg@10", "map"]) for run in runs}
    final = runs[-1]
    lines = [f"mmrank demo: {len(corpus)} passages, {len(queries)} queries (BM25 -> MiniLM bi-encoder)"]
    results: dict[str, list[dict[str, Any]]] = {}
    for q in queries:
        lines.append(f"\nquery {q.id}: {q.text}")
        results[q.id] = []
        for rank, h in enumerate(final[q.id].hits[:top], start=1):
            title = h.item.title if h.item is not None else ""
            lines.append(f"  {rank}. [{h.score:.3f}] {h.id} {title}")
            results[q.id].append({"id": h.id, "score": h.score, "title": title})
    lines.append("")
    for stage, m in metrics.items():
        lines.append(f"{stage:>16}: " + "  ".join(f"{k}={v:.4f}" for k, v in m.items()))
    return {"metrics": metrics, "results": results}, lines


def run_demo(images: bool = True, qa_model: str | None = None) -> dict[str, Any]:
    payload, lines = run_text_demo()
    out: dict[str, Any] = {"text": payload}
    if images:
        try:
            from mmrank.vision.demo import run_image_demo
        except ImportError as e:
            lines.append(f"\n(image demo skipped: {e})")
        else:
            img_lines = run_image_demo()
            lines += ["", *img_lines]
            out["images"] = img_lines
        from mmrank.docs.demo import run_pdf_demo

        pdf_lines = run_pdf_demo(qa_model=qa_model)
        lines += ["", *pdf_lines]
        out["pdf"] = pdf_lines
    return {"json": out, "text": "\n".join(lines)}
