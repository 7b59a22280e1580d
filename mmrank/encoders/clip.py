"""CLIP-style dual encoders for text->image, image->image and image->text search.

* :class:`OpenCLIPEncoder` -- open_clip (Radford et al., CLIP, arXiv 2103.00020; Cherti et al., OpenCLIP,
  arXiv 2212.07143): a model name with a pretrained tag or a local checkpoint file, ``hf-hub:org/repo``, or a
  local folder saved by :meth:`OpenCLIPEncoder.save` (``open_clip_config.json`` + ``open_clip_model.safetensors``).
* :class:`HFCLIPEncoder` -- transformers ``CLIPModel`` / ``SiglipModel`` (Zhai et al., SigLIP, arXiv 2303.15343)
  by hub id or local path, with its ``AutoProcessor``. SigLIP texts are padded to ``max_length`` (64), as the
  model was trained.

Images are decoded lazily and batched through a DataLoader (:mod:`mmrank.encoders.images`); a bad file is skipped
with a warning by :meth:`encode_images` and raises :class:`~mmrank.errors.ImageLoadError` from
:meth:`encode_items` / :meth:`encode_queries` (those files were asked for explicitly). Items are encoded by their
image when they have one, else by their text (image->text search); queries by their image or text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmrank.encoders.base import Encoder
from mmrank.encoders.images import EncodedImages, encode_image_sources, raise_if_failed
from mmrank.errors import DataFormatError
from mmrank.llm.cut import cut_for_tokens
from mmrank.llm.loading import model_errors
from mmrank.types import ImageSource, Item, Query


def _features(out: Any) -> torch.Tensor:
    """transformers 5 returns a ``BaseModelOutputWithPooling`` (projected ``pooler_output``); older a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class _DualEncoder(Encoder):
    """Shared text/image dispatch; subclasses provide ``_transform``, ``_image_forward`` and ``encode_texts``."""

    modalities = frozenset({"text", "image"})
    device: torch.device
    batch_size: int
    num_workers: int | None
    autocast: bool

    def _transform(self) -> Callable[[Any], torch.Tensor]:
        raise NotImplementedError

    def _image_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def encode_images(self, sources: Sequence[ImageSource], *, batch_size: int | None = None) -> EncodedImages:
        """Batch-safe image encoding: bad files are skipped and listed in ``warnings``."""
        return encode_image_sources(
            sources,
            self._transform(),
            self._image_forward,
            dim=self.dim,
            device=self.device,
            batch_size=batch_size or self.batch_size,
            num_workers=self.num_workers,
            autocast=self.autocast,
        )

    def _encode_mixed(
        self, keys: Sequence[tuple[str, str | None, ImageSource | None]], what: str, batch_size: int | None
    ) -> np.ndarray:
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        img_rows = [i for i, (_, _, im) in enumerate(keys) if im is not None]
        txt_rows = [i for i, (_, t, im) in enumerate(keys) if im is None]
        if img_rows:
            enc = self.encode_images([keys[i][2] for i in img_rows], batch_size=batch_size)  # type: ignore[misc]
            raise_if_failed(enc, f"{what} image")
            out[img_rows] = enc.vectors
        if txt_rows:
            texts = []
            for i in txt_rows:
                ident, text, _ = keys[i]
                if not text or not text.strip():
                    raise DataFormatError(f"{what} {ident!r} has neither an image nor text to encode")
                texts.append(text)
            out[txt_rows] = self.encode_texts(texts, batch_size=batch_size)
        return out

    def encode_queries(self, queries: Sequence[Query], *, batch_size: int | None = None) -> np.ndarray:
        for q in queries:
            if q.composed:
                raise DataFormatError(
                    f"query {q.id!r} is composed (image + text); use a composed-retrieval method, not a CLIP encoder"
                )
        return self._encode_mixed([(q.id, q.text, q.image) for q in queries], "query", batch_size)

    def encode_items(self, items: Sequence[Item], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode_mixed([(it.id, it.full_text, it.image) for it in items], "item", batch_size)


class OpenCLIPEncoder(_DualEncoder):
    """open_clip model by name + pretrained tag / checkpoint path, ``hf-hub:`` id, or a saved local folder."""

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        autocast: bool = True,
        precision: str = "fp32",
    ) -> None:
        import open_clip

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        name = model
        if Path(model).is_dir():
            if not (Path(model) / "open_clip_config.json").is_file():
                raise DataFormatError(f"{model}: no open_clip_config.json; not an open_clip model folder")
            name = f"local-dir:{model}"
        with model_errors(
            model if pretrained is None else f"{model}:{pretrained}",
            what="open_clip model",
            catch=(OSError, RuntimeError),
        ):
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=self.device, precision=precision
            )
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(name)
        cfg = open_clip.get_model_config(name) or {}
        self.model_cfg: dict[str, Any] = cfg
        self.dim = int(cfg.get("embed_dim") or self._probe_dim())
        self.batch_size, self.num_workers, self.autocast = batch_size, num_workers, autocast
        self.model_id = f"open_clip:{model}:{pretrained or 'none'}"
        self._spec = {"model": model, "pretrained": pretrained, "precision": precision}

    registry_name = "open-clip"

    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder (stored in index manifests)."""
        return dict(self._spec)

    def _probe_dim(self) -> int:
        with torch.inference_mode():
            return int(self.model.encode_text(self.tokenizer(["a"]).to(self.device)).shape[-1])

    def _transform(self) -> Callable[[Any], torch.Tensor]:
        return self.preprocess

    def _image_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def encode_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        bs = batch_size or self.batch_size
        out = []
        cuda = self.device.type == "cuda"
        with torch.inference_mode():
            for s in range(0, len(texts), bs):
                chunk = cut_for_tokens(texts[s : s + bs], getattr(self.tokenizer, "context_length", 77))
                tok = self.tokenizer(chunk).to(self.device)
                with torch.autocast("cuda", dtype=torch.float16, enabled=cuda and self.autocast):
                    out.append(torch.nn.functional.normalize(self.model.encode_text(tok).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    def save(self, directory: str | Path) -> Path:
        """Save config + safetensors weights; ``OpenCLIPEncoder(model=directory)`` loads them back."""
        from safetensors.torch import save_file

        if not self.model_cfg:
            raise DataFormatError("this open_clip model has no known config to save")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        visual = self.model.visual
        pp = {"mean": list(visual.image_mean), "std": list(visual.image_std)}
        pp.update(
            {k: v for k, v in getattr(visual, "preprocess_cfg", {}).items() if k in ("interpolation", "resize_mode")}
        )
        (d / "open_clip_config.json").write_text(
            json.dumps({"model_cfg": self.model_cfg, "preprocess_cfg": pp}, indent=2)
        )
        sd = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        save_file(sd, str(d / "open_clip_model.safetensors"))
        return d


class HFCLIPEncoder(_DualEncoder):
    """transformers ``CLIPModel`` / ``SiglipModel`` (any model with ``get_text_features`` and
    ``get_image_features``) and its ``AutoProcessor``, by hub id or local path."""

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        autocast: bool = True,
        max_length: int | None = None,
    ) -> None:
        from transformers import AutoModel, AutoProcessor

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        with model_errors(model, what="CLIP model"):
            self.model = AutoModel.from_pretrained(model).to(self.device).eval()
            self.processor = AutoProcessor.from_pretrained(model)
        if not (hasattr(self.model, "get_text_features") and hasattr(self.model, "get_image_features")):
            raise DataFormatError(f"{model}: {type(self.model).__name__} is not a dual text/image encoder")
        mtype = getattr(self.model.config, "model_type", "")
        self.siglip = mtype.startswith("siglip")
        text_cfg = getattr(self.model.config, "text_config", None)
        self.max_length = max_length or (
            64 if self.siglip else int(getattr(text_cfg, "max_position_embeddings", 77) or 77)
        )
        self.batch_size, self.num_workers, self.autocast = batch_size, num_workers, autocast
        self.dim = self._probe_dim()
        self.model_id = f"hf:{model}"
        self._spec = {"model": model, "max_length": max_length}

    registry_name = "hf-clip"

    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder (stored in index manifests)."""
        return dict(self._spec)

    def _probe_dim(self) -> int:
        return int(self.encode_texts(["a"]).shape[1])

    def _transform(self) -> Callable[[Any], torch.Tensor]:
        return _HFImageTransform(self.processor.image_processor)

    def _image_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def encode_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        bs = batch_size or self.batch_size
        tok = self.processor.tokenizer
        pad: Any = "max_length" if self.siglip else True
        out = []
        cuda = self.device.type == "cuda"
        with torch.inference_mode():
            for s in range(0, len(texts), bs):
                enc = tok(
                    cut_for_tokens(texts[s : s + bs], self.max_length),
                    padding=pad,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                kw = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "position_ids")}
                if self.siglip:
                    kw.pop("attention_mask", None)  # SigLIP was trained without a text attention mask
                with torch.autocast("cuda", dtype=torch.float16, enabled=cuda and self.autocast):
                    f = _features(self.model.get_text_features(**kw))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    def save(self, directory: str | Path) -> Path:
        """``save_pretrained`` of model and processor; ``HFCLIPEncoder(model=directory)`` loads them back."""
        d = Path(directory)
        self.model.save_pretrained(d)
        self.processor.save_pretrained(d)
        return d


class _HFImageTransform:
    """Picklable PIL -> ``(3, H, W)`` tensor through a transformers image processor (DataLoader workers)."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, img: Any) -> torch.Tensor:
        return self.image_processor(images=img, return_tensors="pt")["pixel_values"][0]
