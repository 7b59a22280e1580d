"""Registry entries as data. Each area keeps its own block; targets are imported only on use."""

from __future__ import annotations

from mmrank.registry import Entry

# --- foundation: retrieval, encoders, indexes, the bi-encoder reranker ---------------------------
FOUNDATION = [
    Entry("retriever", "bm25", "mmrank.retrieve.bm25:BM25Retriever", summary="BM25 via bm25s (Robertson et al.)"),
    Entry("retriever", "dense", "mmrank.retrieve.dense:DenseRetriever", summary="any encoder + vector index"),
    Entry("retriever", "hybrid", "mmrank.retrieve.hybrid:HybridRetriever", summary="RRF / weighted fusion"),
    Entry(
        "encoder",
        "sentence-transformers",
        "mmrank.encoders.text:SentenceTransformerEncoder",
        aliases=("st", "minilm", "text"),
        summary="sentence-transformers model by hub id or path",
    ),
    Entry("encoder", "hf-text", "mmrank.encoders.text:HFTextEncoder", summary="transformers AutoModel + pooling"),
    Entry("index", "exact", "mmrank.index.exact:ExactIndex", aliases=("torch", "flat-torch")),
    Entry("index", "faiss-flat", "mmrank.index.faiss_index:FaissFlatIndex", aliases=("faiss",)),
    Entry("index", "faiss-ivf", "mmrank.index.faiss_index:FaissIVFIndex"),
    Entry("index", "faiss-hnsw", "mmrank.index.faiss_index:FaissHNSWIndex"),
    Entry(
        "reranker",
        "bi-encoder",
        "mmrank.rerank.biencoder:BiEncoderReranker",
        aliases=("dense", "biencoder"),
        summary="cosine of query and item embeddings",
    ),
]

# --- vision (issue 3) -------------------------------------------------------------------------
VISION: list[Entry] = []

# --- text rerankers (issue 4) -----------------------------------------------------------------
TEXT_RERANKERS: list[Entry] = []

ENTRIES = FOUNDATION + VISION + TEXT_RERANKERS
