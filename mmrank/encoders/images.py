"""Lazily decoded image batches that never crash on a bad file.

:class:`ImageDataset` decodes one image per ``__getitem__`` (in DataLoader workers when ``num_workers > 0``) with
:func:`mmrank.types.load_image`, which handles palette, alpha, CMYK and 16-bit images and rejects zero-byte,
corrupt, truncated files and decompression bombs. A failed file becomes a ``(index, None, message)`` record;
:func:`collate_images` separates those from the good tensors, so a batch always goes through and the caller
records a warning per failed file. :func:`list_image_files` lists a folder and records its non-image files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmrank.errors import ImageLoadError
from mmrank.types import ImageSource, load_image

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jp2", ".ico"}
)

Transform = Callable[[Any], torch.Tensor]


def describe_source(src: ImageSource) -> str:
    if isinstance(src, (str, Path)):
        return str(src)
    if isinstance(src, bytes):
        return f"<{len(src)} bytes>"
    return "<PIL image>"


def list_image_files(folder: str | Path, *, recursive: bool = True) -> tuple[list[Path], list[str]]:
    """Image files under ``folder`` (sorted) and one warning per skipped non-image file (hidden files ignored)."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageLoadError(f"{root}: not a folder")
    files: list[Path] = []
    warnings: list[str] = []
    walker = root.rglob("*") if recursive else root.glob("*")
    for p in sorted(walker):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(p)
        else:
            warnings.append(f"{p}: skipped, not an image file (extension {p.suffix or 'none'!r})")
    return files, warnings


class ImageDataset(Dataset):
    """``sources[i] -> (i, tensor or None, error message or None)``; decoding happens on access."""

    def __init__(self, sources: Sequence[ImageSource], transform: Transform) -> None:
        self.sources = list(sources)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        src = self.sources[i]
        try:
            img = load_image(src, mode="RGB")
            return i, self.transform(img), None
        except ImageLoadError as e:
            return i, None, str(e)
        except Exception as e:  # a transform failing on a degenerate image (e.g. 1x1) must not kill the batch
            return i, None, f"{describe_source(src)}: cannot preprocess ({type(e).__name__}: {e})"


@dataclass
class ImageBatch:
    indices: list[int]
    pixels: torch.Tensor | None
    failed: list[tuple[int, str]] = field(default_factory=list)


def collate_images(records: list[tuple[int, torch.Tensor | None, str | None]]) -> ImageBatch:
    good = [(i, t) for i, t, _ in records if t is not None]
    failed = [(i, str(err)) for i, t, err in records if t is None]
    pixels = torch.stack([t for _, t in good]) if good else None
    return ImageBatch([i for i, _ in good], pixels, failed)


def collate_by_shape(records: list[tuple[int, torch.Tensor | None, str | None]]) -> list[ImageBatch]:
    """Like :func:`collate_images`, one batch per distinct tensor shape (images kept at their own size never
    need padding, which would change pooled features); failures ride on the first batch."""
    shapes: dict[tuple[int, ...], list[tuple[int, torch.Tensor | None, str | None]]] = {}
    failed = [r for r in records if r[1] is None]
    for r in records:
        if r[1] is not None:
            shapes.setdefault(tuple(r[1].shape), []).append(r)
    groups = [collate_images(g) for g in shapes.values()] or [ImageBatch([], None)]
    groups[0].failed = [(i, str(err)) for i, _, err in failed]
    return groups


def size_buckets(keys: Sequence[Any], batch_size: int) -> list[list[int]]:
    """Index batches that never mix two keys (e.g. resized ``(w, h)``); batches follow key order, indices inside
    a key keep input order. ``None`` keys (size unknown before decoding) form their own batches."""
    by_key: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    ordered = sorted(by_key.items(), key=lambda kv: (kv[0] is None, repr(kv[0])))
    return [idx[s : s + batch_size] for _, idx in ordered for s in range(0, len(idx), batch_size)]


def image_batches(
    sources: Sequence[ImageSource],
    transform: Transform,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[ImageBatch]:
    """Batches of decoded images in input order; failed files are reported in ``ImageBatch.failed``."""
    ds = ImageDataset(sources, transform)
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate_images,
        persistent_workers=False,
    )
    yield from loader


@dataclass
class EncodedImages:
    """Result of a batch-safe encode: ``vectors`` has one row per *good* image; ``ok[i]`` says if source ``i``
    was encoded; ``warnings`` names every skipped file and why."""

    vectors: np.ndarray
    ok: np.ndarray
    warnings: list[str]

    def full(self, fill: float = 0.0) -> np.ndarray:
        """``(n_sources, d)`` matrix with ``fill`` in the rows of failed sources."""
        out = np.full((len(self.ok), self.vectors.shape[1]), fill, dtype=np.float32)
        out[self.ok] = self.vectors
        return out


def encode_image_sources(
    sources: Sequence[ImageSource],
    transform: Transform,
    forward: Callable[[torch.Tensor], torch.Tensor],
    *,
    dim: int,
    device: torch.device,
    batch_size: int = 32,
    num_workers: int | None = None,
    autocast: bool = True,
    size_key: Callable[[ImageSource], Any] | None = None,
) -> EncodedImages:
    """Decode lazily, batch, run ``forward`` (pixels on ``device`` -> ``(b, dim)``) and L2-normalise.

    ``size_key(source)`` (cheap, e.g. from the file header) buckets sources of one resized size into the same
    batches, for encoders that keep each image's aspect ratio; a batch that still mixes shapes (a key was
    ``None`` or wrong) is split by shape, never padded.

    On CUDA: pinned host memory, non-blocking copies and ``torch.autocast`` (fp16) when ``autocast``.
    Bad files are skipped and listed in ``warnings``.
    """
    if num_workers is None:
        num_workers = min(4, os.cpu_count() or 1) if (device.type == "cuda" and len(sources) > batch_size) else 0
    cuda = device.type == "cuda"
    n = len(sources)
    ok = np.zeros(n, dtype=bool)
    vecs = np.zeros((n, dim), dtype=np.float32)
    warnings: list[str] = []
    if size_key is None:
        loader: Any = image_batches(sources, transform, batch_size=batch_size, num_workers=num_workers, pin_memory=cuda)
        batches: Iterator[ImageBatch] = iter(loader)
    else:
        loader = DataLoader(
            ImageDataset(sources, transform),
            batch_sampler=size_buckets([size_key(s) for s in sources], batch_size),
            num_workers=num_workers,
            pin_memory=cuda,
            collate_fn=collate_by_shape,
        )
        batches = (b for group in loader for b in group)
    with torch.inference_mode():
        for batch in batches:
            for _i, msg in batch.failed:
                warnings.append(f"skipped {msg}")
            if batch.pixels is None:
                continue
            px = batch.pixels.to(device, non_blocking=cuda)
            if cuda and autocast:
                with torch.autocast("cuda", dtype=torch.float16):
                    out = forward(px)
            else:
                out = forward(px)
            out = torch.nn.functional.normalize(out.float(), dim=-1)
            vecs[batch.indices] = out.cpu().numpy()
            ok[batch.indices] = True
    return EncodedImages(vecs[ok], ok, warnings)


def raise_if_failed(enc: EncodedImages, what: str = "image") -> None:
    """Raise :class:`ImageLoadError` naming every failed file (for callers that asked for those files)."""
    if not enc.ok.all():
        listing = "; ".join(enc.warnings[:10]) + (" ..." if len(enc.warnings) > 10 else "")
        raise ImageLoadError(f"{int((~enc.ok).sum())} {what}(s) could not be encoded: {listing}")
