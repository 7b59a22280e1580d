"""Global pooling of a CNN feature map ``(B, C, H, W) -> (B, C)``: average, max and GeM.

GeM (generalised mean) pooling, Radenović, Tolias, Chum, "Fine-tuning CNN Image Retrieval with No Human
Annotation", TPAMI 2018 (arXiv 1711.02512): ``f_c = (mean_hw x_c^p)^(1/p)``. ``p = 1`` is average pooling and
``p -> inf`` approaches max pooling. Their default is ``p = 3`` (learnable when fine-tuning).
"""

from __future__ import annotations

import torch
from torch import nn


def avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Spatial mean of a ``(B, C, H, W)`` map."""
    return x.mean(dim=(-2, -1))


def max_pool(x: torch.Tensor) -> torch.Tensor:
    """Spatial max of a ``(B, C, H, W)`` map."""
    return x.amax(dim=(-2, -1))


def gem(x: torch.Tensor, p: float | torch.Tensor = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """GeM pooling ``(mean_hw clamp(x, eps)^p)^(1/p)`` (arXiv 1711.02512); computed in float32."""
    x = x.float().clamp(min=eps)
    return x.pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


class GeM(nn.Module):
    """GeM pooling with a fixed or learnable exponent ``p`` (arXiv 1711.02512; default ``p = 3``)."""

    def __init__(self, p: float = 3.0, *, learnable: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM needs p > 0, got {p}")
        t = torch.tensor(float(p))
        self.p: torch.Tensor
        if learnable:
            self.p = nn.Parameter(t)
        else:
            self.register_buffer("p", t)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem(x, self.p, self.eps)

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4g}, learnable={isinstance(self.p, nn.Parameter)}"
