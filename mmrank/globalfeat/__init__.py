"""Global image descriptors: GeM pooling, SuperGlobal (arXiv 2308.06954) modules and reranking."""

from mmrank.globalfeat.gem import GeM, avg_pool, gem, max_pool
from mmrank.globalfeat.rerank import SuperGlobalReranker, refine_rerank
from mmrank.globalfeat.superglobal import (
    ReLUPlus,
    SuperGlobalConfig,
    apply_relu_plus,
    gem_plus,
    regional_gem,
    scale_gem,
)

__all__ = [
    "GeM",
    "ReLUPlus",
    "SuperGlobalConfig",
    "SuperGlobalReranker",
    "apply_relu_plus",
    "avg_pool",
    "gem",
    "gem_plus",
    "max_pool",
    "refine_rerank",
    "regional_gem",
    "scale_gem",
]
