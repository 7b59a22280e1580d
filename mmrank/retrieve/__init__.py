"""First-stage retrievers: BM25, dense (any encoder + index), hybrid fusion."""
