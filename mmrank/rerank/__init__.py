"""Rerankers: one contract (``rerank(queries, candidates, top_k) -> Run``) for every family and modality."""
