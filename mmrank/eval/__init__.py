"""Evaluation: retrieval metrics with trec_eval parity, significance tests, per-modality protocols."""

from mmrank.eval.metrics import compare, evaluate, parse_metric, significance

__all__ = ["compare", "evaluate", "parse_metric", "significance"]
