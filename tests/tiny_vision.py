"""Tiny vision models built from config (no download) and real / broken test images for the vision tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

TINY_OPEN_CLIP = "mmrank-tiny-clip"
TINY_OPEN_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def register_tiny_open_clip(directory: Path) -> str:
    """Register the tiny open_clip config from a JSON file (its BPE vocabulary ships in the open_clip wheel)."""
    import json

    import open_clip

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{TINY_OPEN_CLIP}.json"
    path.write_text(json.dumps(TINY_OPEN_CLIP_CFG))
    open_clip.add_model_config(path)
    return TINY_OPEN_CLIP


def _tiny_clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in [chr(x) for x in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?"):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    for t in ("<|startoftext|>", "<|endoftext|>"):
        vocab[t] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[]), vocab


def save_tiny_hf_clip(directory: Path, *, siglip: bool = False, seed: int = 0) -> Path:
    """Save a randomly initialised tiny transformers CLIPModel (or SiglipModel) with its processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    tok, vocab = _tiny_clip_tokenizer()
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64 if siglip else 16,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    if siglip:
        from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval()
        proc = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok)
    else:
        ids = dict(
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
        model = CLIPModel(CLIPConfig(text_config={**text, **ids}, vision_config=vision, projection_dim=16)).eval()
        ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        proc = CLIPProcessor(image_processor=ip, tokenizer=tok)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    proc.save_pretrained(directory)
    return directory


def skimage_photos() -> dict[str, np.ndarray]:
    """Real RGB photos shipped inside the scikit-image wheel."""
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(), "astronaut": data.astronaut()}


def write_photos(directory: Path, size: int = 64) -> list[Path]:
    """The skimage photos as small JPEGs plus an augmented (flipped, cropped) copy of each."""
    from PIL import Image, ImageOps

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, arr in skimage_photos().items():
        img = Image.fromarray(arr).convert("RGB")
        img.resize((size, size)).save(directory / f"{name}.jpg", quality=90)
        w, h = img.size
        aug = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 10, h - h // 10)))
        aug.resize((size, size)).save(directory / f"{name}_aug.jpg", quality=90)
        out += [directory / f"{name}.jpg", directory / f"{name}_aug.jpg"]
    return out


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb as far as the header goes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    raw = zlib.compress(b"\x00" * 16)
    idat = b"IDAT" + raw

    def c(b: bytes) -> bytes:
        return struct.pack(">I", len(b) - 4) + b + struct.pack(">I", zlib.crc32(b) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + c(chunk) + c(idat) + c(b"IEND")


def write_odd_images(directory: Path) -> dict[str, Path]:
    """Images that must decode (CMYK, 16-bit, palette, alpha) and files that must be skipped."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(skimage_photos()["coffee"]).resize((48, 48))
    paths: dict[str, Path] = {}
    paths["cmyk"] = directory / "cmyk.jpg"
    rgb.convert("CMYK").save(paths["cmyk"])
    paths["grey16"] = directory / "grey16.png"
    arr16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(arr16).save(paths["grey16"])
    paths["palette"] = directory / "palette.png"
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(paths["palette"])
    paths["alpha"] = directory / "alpha.png"
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(paths["alpha"])
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG")
    good = buf.getvalue()
    paths["truncated"] = directory / "truncated.jpg"
    paths["truncated"].write_bytes(good[: len(good) // 2])
    paths["corrupt"] = directory / "corrupt.png"
    paths["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    paths["empty"] = directory / "empty.jpg"
    paths["empty"].write_bytes(b"")
    paths["bomb"] = directory / "bomb.png"
    paths["bomb"].write_bytes(_png_header_only(40_000, 40_000))
    paths["notes"] = directory / "notes.txt"
    paths["notes"].write_text("not an image")
    return paths


GOOD_ODD = ("cmyk", "grey16", "palette", "alpha")
BAD_ODD = ("truncated", "corrupt", "empty", "bomb")
