"""Ready-made pipelines that rebuild a paper's setting.

:func:`mm_r5_paper` -- the MM-R5 paper's pipeline (Xu et al., arXiv 2506.12364, Sec. 4 and the i2vec/MM-R5 README):
ColQwen2 retrieves pages of the query's document (MMDocIR page retrieval, Dong et al., arXiv 2501.08828), MM-R5
reranks the top candidates from their page images, and both stages are scored with MMDocIR's page recall@1/3/5,
macro (averaged per document, then over documents) and micro (averaged over questions) -- :func:`page_recall`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmrank.pipeline import Pipeline
from mmrank.types import Qrels, Run


def mm_r5_paper(
    *,
    retriever_model: str = "vidore/colqwen2-v1.0-hf",
    reranker_model: str = "i2vec/MM-R5",
    k: int = 20,
    rerank_top: int = 10,
    within_doc: bool = True,
    retriever_kwargs: Mapping[str, Any] | None = None,
    reranker_kwargs: Mapping[str, Any] | None = None,
) -> Pipeline:
    """ColQwen2 (exact MaxSim) top-``k`` -> MM-R5 over the top ``rerank_top`` page images.

    [gap: the MM-R5 code does not state how many candidates it reranks at inference (training used 5, and its
    R@5 gains imply more); ``rerank_top=10`` is a parameter.]
    """
    from mmrank.rerank.mm_r5 import MMR5Reranker
    from mmrank.retrieve.maxsim import MaxSimRetriever

    retriever = MaxSimRetriever(
        "colqwen2", model=retriever_model, within_doc=within_doc, **dict(retriever_kwargs or {})
    )
    reranker = MMR5Reranker(reranker_model, **dict(reranker_kwargs or {}))
    return Pipeline(retriever, [(reranker, rerank_top)], k=k)


def page_recall(
    run: Run, qrels: Qrels, query_doc: Mapping[str, str], ks: Sequence[int] = (1, 3, 5)
) -> dict[str, float]:
    """MMDocIR page recall: per question ``|relevant pages in top k| / |relevant pages|``; ``micro_recall@k`` is the
    mean over questions, ``macro_recall@k`` the mean over documents of their questions' mean (ir_measures
    ``R@k`` per query). Questions without relevant pages are left out, as in MMDocIR."""
    from mmrank.eval import evaluate

    judged = {q: r for q, r in qrels.items() if any(v > 0 for v in r.values())}
    per = evaluate(run, judged, [f"recall@{k}" for k in ks], per_query=True, complete=True)
    assert isinstance(per, dict)
    out: dict[str, float] = {}
    for k in ks:
        vals: dict[str, float] = per[f"recall@{k}"]  # type: ignore[assignment]
        out[f"micro_recall@{k}"] = sum(vals.values()) / len(vals)
        docs: dict[str, list[float]] = {}
        for q, v in vals.items():
            docs.setdefault(str(query_doc.get(q, q)), []).append(v)
        out[f"macro_recall@{k}"] = sum(sum(v) / len(v) for v in docs.values()) / len(docs)
    return out
