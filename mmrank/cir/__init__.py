"""Composed image retrieval: composed-query baselines over CLIP, SQUARE's SQAF and EBR (arXiv 2509.26330).

* :class:`~mmrank.cir.retrieve.ComposedRetriever` -- image / text / weighted sum / caption / SQAF query embeddings.
* :class:`~mmrank.cir.captioner.TargetCaptioner` -- a VLM describes the target image (SQAF, caption search).
* :class:`~mmrank.cir.ebr.EBRReranker` -- the top-K in one marked grid, ranked by a VLM in a single pass.
* :class:`~mmrank.cir.pointwise.PointwiseVLMReranker` -- the per-candidate yes/no VLM baseline.
* :func:`~mmrank.cir.bench.run_benchmark` -- CIRR / CIRCO / FashionIQ runs with per-query checkpoints
  (loaders and metrics in :mod:`mmrank.eval.cir`).
"""

from mmrank.cir.compose import compose, fuse_caption
from mmrank.cir.grid import GridSpec, make_grid
from mmrank.cir.parse import parse_grid_ranking

__all__ = ["GridSpec", "compose", "fuse_caption", "make_grid", "parse_grid_ranking"]
