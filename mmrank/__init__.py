"""mmrank: multimodal retrieval and reranking -- text, images and document pages in one pipeline.

Public API (imports are lazy, so ``import mmrank`` is fast and touches no network)::

    import mmrank
    corpus = mmrank.load_corpus("data/beir/scifact")
    run = mmrank.retriever("bm25").index(corpus).retrieve(queries, k=100)
    run = mmrank.reranker("bi-encoder").rerank(queries, run, top_k=100)
    mmrank.evaluate(run, qrels, ["ndcg@10", "map"])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # data model
    "Item": "mmrank.types",
    "Query": "mmrank.types",
    "Hit": "mmrank.types",
    "Ranking": "mmrank.types",
    "Run": "mmrank.types",
    "Corpus": "mmrank.types",
    "PageRef": "mmrank.types",
    "load_image": "mmrank.types",
    # registry
    "retriever": "mmrank.registry",
    "reranker": "mmrank.registry",
    "encoder": "mmrank.registry",
    "vector_index": "mmrank.registry",
    "names": "mmrank.registry",
    # pipeline, fusion, evaluation
    "Pipeline": "mmrank.pipeline",
    "fuse_runs": "mmrank.fusion",
    "evaluate": "mmrank.eval.metrics",
    "compare": "mmrank.eval.metrics",
    "significance": "mmrank.eval.metrics",
    # readers / writers
    "load_corpus": "mmrank.io",
    "load_queries": "mmrank.io",
    "load_qrels": "mmrank.io",
    "load_run": "mmrank.io",
    "write_trec_run": "mmrank.io",
    "VectorIndex": "mmrank.index.base",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmrank' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
