"""Composed query embeddings: the weighted sum of image and text embeddings, and SQAF's caption fusion.

* :func:`compose` -- ``normalize((1 - alpha) * E_img(I_ref) + alpha * E_txt(T_mod))``, the composed query of
  WeiMoCIR (Wu et al., arXiv 2409.04918; ``whats2000/WeiMoCIR@56aee3b`` ``src/cirr_experiment/utils.py
  :element_wise_sum``, alpha = 0.65 by default) and of SQUARE's first stage (arXiv 2509.26330, q_vlm).
  mmrank's CLIP encoders return L2-normalised embeddings, so the two terms enter with unit norm; WeiMoCIR sums
  the raw CLIP features, whose norms differ, so an alpha tuned there is not exactly the same weight here.
* :func:`fuse_caption` -- SQAF (arXiv 2509.26330): the composed query enriched with the text embedding of an
  MLLM-generated caption of the target, ``normalize((1 - beta) * q + beta * E_txt(caption))`` on unit vectors.
  The paper's exact fusion weight is not public [gap]; beta = 0.65 mirrors WeiMoCIR's weight of its caption
  (text) term (``validate_notebook.py``, beta = 0.65, swept over 0..1 in steps of 0.05).
"""

from __future__ import annotations

import numpy as np

from mmrank.encoders.base import l2_normalise

ALPHA = 0.65
BETA = 0.65


def _check_weight(name: str, w: float) -> float:
    w = float(w)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {w}")
    return w


def _mix(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    a = l2_normalise(np.asarray(a, dtype=np.float32))
    b = l2_normalise(np.asarray(b, dtype=np.float32))
    if a.shape != b.shape:
        raise ValueError(f"embeddings to fuse differ in shape: {a.shape} vs {b.shape}")
    return l2_normalise((1.0 - w) * a + w * b)


def compose(image_emb: np.ndarray, text_emb: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Row-wise ``normalize((1 - alpha) * normalize(img) + alpha * normalize(txt))``."""
    return _mix(image_emb, text_emb, _check_weight("alpha", alpha))


def fuse_caption(query_emb: np.ndarray, caption_emb: np.ndarray, beta: float = BETA) -> np.ndarray:
    """Row-wise ``normalize((1 - beta) * normalize(q) + beta * normalize(caption))`` (SQAF)."""
    return _mix(query_emb, caption_emb, _check_weight("beta", beta))
