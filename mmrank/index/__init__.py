"""Vector indexes: exact (torch) and FAISS (flat, IVF, HNSW; GPU when available), atomic save/load."""

from mmrank.index.base import VectorIndex

__all__ = ["VectorIndex"]
