"""SuperGlobal feature modules: ReLU+, regional-GeM, GeM+ and scale-GeM.

Shao et al., "Global Features are All You Need for Image Retrieval and Reranking", ICCV 2023
(arXiv 2308.06954). Defaults follow the official code (ShihaoShao-GH/SuperGlobal@8694696), all applied post hoc
to a frozen backbone:

* ReLU+: ``clamp(x, min=0.014)`` replaces ReLU on the residual-block outputs of ResNet stages 1-3 and inside
  the stage-1 bottlenecks; stage 4 keeps the plain ReLU.
* regional-GeM: ``x <- 0.5 * LPPool2d(p=2.5, k=5, stride=1)(ReflectionPad2d(2)(x) / 25^(1/2.5)) + 0.5 * x``.
* GeM+: GeM with a fixed ``p = 4.6`` (eps ``1e-8``), then L2 normalisation.
* scale-GeM: descriptors at scales ``(0.7071, 1, 1.4142)``, each L2-normalised, element-wise max over scales
  (the ``infinity=True`` default), then L2 normalised again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmrank.globalfeat.gem import gem

RELU_PLUS_ALPHA = 0.014
RGEM_P = 2.5
RGEM_SIZE = 5
GEM_PLUS_P = 4.6
SGEM_SCALES = (0.7071, 1.0, 1.4142)


@dataclass(frozen=True)
class SuperGlobalConfig:
    """Switches and parameters of the SuperGlobal descriptor (each component can be turned off for ablations).

    With ``gem_plus=False`` the pooling falls back to ``pooling`` (``"gem"`` with ``gem_p``, ``"avg"`` or
    ``"max"``); with ``sgem=False`` only scale 1 is used.
    """

    relu_plus: bool = True
    relu_plus_alpha: float = RELU_PLUS_ALPHA
    rgem: bool = True
    rgem_p: float = RGEM_P
    rgem_size: int = RGEM_SIZE
    rgem_mix: float = 0.5
    gem_plus: bool = True
    gem_plus_p: float = GEM_PLUS_P
    pooling: str = "gem"
    gem_p: float = 3.0
    sgem: bool = True
    scales: tuple[float, ...] = field(default=SGEM_SCALES)
    sgem_infinity: bool = True
    sgem_p: float = 10.0

    @classmethod
    def off(cls, **overrides: Any) -> SuperGlobalConfig:
        """Everything off (plain pooling at one scale), then ``overrides``."""
        base = dict(relu_plus=False, rgem=False, gem_plus=False, sgem=False)
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d


class ReLUPlus(nn.Module):
    """ReLU+ of SuperGlobal (arXiv 2308.06954): ``clamp(x, min=alpha, max=max)``; ``alpha = 0.014``."""

    def __init__(self, alpha: float = RELU_PLUS_ALPHA, max: float | None = None) -> None:
        super().__init__()
        self.alpha = alpha
        self.max = max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.alpha, max=self.max)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (f", max={self.max}" if self.max is not None else "")


def regional_gem(x: torch.Tensor, p: float = RGEM_P, size: int = RGEM_SIZE, mix: float = 0.5) -> torch.Tensor:
    """Regional-GeM on a ``(B, C, H, W)`` map (arXiv 2308.06954): a ``size x size`` local GeM, stride 1,
    reflection padding, mixed with the input: ``mix * localgem(x) + (1 - mix) * x``.

    Maps smaller than the padding (``H or W <= size // 2``) use replicate padding instead of reflection.
    """
    pad = (size - 1) // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    xp = F.pad(x / (size * size) ** (1.0 / p), (pad, pad, pad, pad), mode=mode)
    return mix * F.lp_pool2d(xp, p, size, stride=1) + (1.0 - mix) * x


def gem_plus(x: torch.Tensor, p: float = GEM_PLUS_P) -> torch.Tensor:
    """GeM+ of SuperGlobal: GeM with the fixed ``p = 4.6`` and ``eps = 1e-8`` (arXiv 2308.06954)."""
    return gem(x, p, eps=1e-8)


def scale_gem(descriptors: Sequence[torch.Tensor], *, infinity: bool = True, p: float = 10.0) -> torch.Tensor:
    """Scale-GeM over per-scale descriptors, each ``(B, D)`` (arXiv 2308.06954).

    ``infinity=True`` (the paper's default): L2-normalise each scale, then element-wise max over scales.
    ``infinity=False``: ``(mean_s (x - g)^p)^(1/p) + g`` with ``g`` the minimum value; here ``g`` is taken per
    image (the official code takes it over the whole tensor, which is per image at its batch size of 1).
    """
    x = torch.stack(list(descriptors), 0)  # (S, B, D)
    if infinity:
        return F.normalize(x, p=2, dim=-1).amax(dim=0)
    g = x.amin(dim=(0, 2), keepdim=True)
    return (x - g).pow(p).mean(0).pow(1.0 / p) + g[0]


# --- ReLU+ surgery on torchvision backbones ----------------------------------------------------
class _ReLUPlusResBlock(nn.Module):
    """A torchvision ResNet block whose activations clamp at ``alpha_out`` (block output) and ``alpha_in``."""

    def __init__(self, block: nn.Module, alpha_out: float, alpha_in: float) -> None:
        super().__init__()
        self.block = block
        self.alpha_out = alpha_out
        self.alpha_in = alpha_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b: Any = self.block
        out = b.bn1(b.conv1(x)).clamp(min=self.alpha_in)
        out = b.bn2(b.conv2(out))
        if hasattr(b, "conv3"):  # Bottleneck: the second activation is inside the block
            out = b.bn3(b.conv3(out.clamp(min=self.alpha_in)))
        identity = b.downsample(x) if b.downsample is not None else x
        return (out + identity).clamp(min=self.alpha_out)


def _replace_relu6(module: nn.Module, alpha: float) -> int:
    n = 0
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, ReLUPlus(alpha, max=6.0))
            n += 1
        else:
            n += _replace_relu6(child, alpha)
    return n


def apply_relu_plus(model: nn.Module, arch: str, alpha: float = RELU_PLUS_ALPHA) -> str:
    """Put ReLU+ into a torchvision backbone in place and return a one-line description of what changed.

    * ResNet (``resnet*``): as the official code, the outputs of every block in ``layer1``-``layer3`` clamp at
      ``alpha``; the activations inside the ``layer1`` bottlenecks too; ``layer4`` and the stem keep ReLU.
    * MobileNetV2 (``mobilenet_v2``): its inverted-residual blocks end in a *linear* bottleneck, so there is no
      block-output activation to replace. Our analogue (not in the paper): the ReLU6 activations inside the
      blocks at output stride <= 16 (``features[1:14]``, the counterpart of ResNet stages 1-3) become
      ``clamp(x, alpha, 6)``; the stride-32 blocks and the final 1x1 conv keep ReLU6.

    Other architectures raise ``ValueError``: we do not guess where the analogous activations are.
    """
    arch = arch.lower()
    if arch.startswith("resnet") or arch.startswith("wide_resnet") or arch.startswith("resnext"):
        for li, layer_name in enumerate(("layer1", "layer2", "layer3")):
            layer = getattr(model, layer_name)
            for i in range(len(layer)):
                inner = alpha if li == 0 and hasattr(layer[i], "conv3") else 0.0
                layer[i] = _ReLUPlusResBlock(layer[i], alpha_out=alpha, alpha_in=inner)
        return f"ReLU+ (alpha={alpha}) on ResNet layer1-3 block outputs and inside layer1 bottlenecks"
    if arch == "mobilenet_v2":
        features: Any = model.features
        n = sum(_replace_relu6(features[i], alpha) for i in range(1, 14))
        return f"ReLU+ (alpha={alpha}) on {n} ReLU6 inside MobileNetV2 blocks features[1:14] (output stride <= 16)"
    raise ValueError(
        f"ReLU+ is defined for torchvision ResNets and MobileNetV2 only, not {arch!r}; pass relu_plus=False"
    )
