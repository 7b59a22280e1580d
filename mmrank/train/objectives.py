"""The two training objectives of "Supervised Fine-Tuning or Contrastive Learning? Towards Better Multimodal LLM
Reranking" (arXiv 2510.14824), on the LM logits at the last position (after the judge prompt's generation prompt).

* SFT: per-pair cross-entropy on the label token over the two label logits ``[z_no, z_yes]``: a positive is
  labelled ``yes``, a negative ``no``; ``loss = mean_i -log softmax([z_no, z_yes])_i[label_i]``.
* Contrastive (CL): InfoNCE over one positive and N negatives on the yes logit ``s = z_yes``:
  ``loss = mean_groups -log exp(s+/t) / (exp(s+/t) + sum exp(s-/t))``.

The temperature ``t`` is not given by the paper's notes (the CL score is the raw ``z_yes``, i.e. ``t = 1``):
it is a parameter with default ``1.0`` [gap]. The scores are those of :mod:`mmrank.rerank.heads`.
"""

from __future__ import annotations

import torch

from mmrank.rerank.heads import cl_score

DEFAULT_TEMPERATURE = 1.0


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, *, yes_id: int, no_id: int) -> torch.Tensor:
    """Mean cross-entropy of the label token; ``logits`` ``(n, vocab)``, ``labels`` ``(n,)`` with 1 = yes, 0 = no."""
    two = torch.stack([logits[:, no_id], logits[:, yes_id]], dim=-1).float()
    return torch.nn.functional.cross_entropy(two, labels.long().to(two.device))


def contrastive_loss(logits: torch.Tensor, *, yes_id: int, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """Mean InfoNCE over groups; ``logits`` ``(groups, 1 + N, vocab)`` with the positive first in each group."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s = cl_score(logits, yes_id).float() / temperature
    target = torch.zeros(s.shape[0], dtype=torch.long, device=s.device)
    return torch.nn.functional.cross_entropy(s, target)
