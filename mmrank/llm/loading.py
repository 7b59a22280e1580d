"""Resolve where a model comes from (hub id, local directory, GGUF file) and which device/dtype it runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmrank.errors import MissingDependencyError


def resolve_device(device: str | None) -> torch.device:
    """``None`` picks CUDA when available, else CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on CUDA, float32 elsewhere (bf16 matmuls are slow on most CPUs)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    table |= {"fp16": torch.float16, "float16": torch.float16, "half": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'fp32', 'bf16' or 'fp16'")
    return table[dtype]


def source_kwargs(model: str, gguf_file: str | None) -> tuple[str, dict[str, Any]]:
    """Map ``(model, gguf_file)`` to ``from_pretrained``'s ``(name_or_path, kwargs)``.

    ``gguf_file`` may be a file name inside ``model`` (a directory or hub repo) or a path to a ``.gguf``
    file anywhere; a bare ``model`` ending in ``.gguf`` is treated as that file.
    """
    if gguf_file is None and str(model).endswith(".gguf"):
        gguf_file = str(model)
        model = str(Path(model).parent)
    if gguf_file is None:
        return str(model), {}
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("loading a GGUF file needs the 'gguf' package: pip install 'mmrank[llm]'") from e
    p = Path(gguf_file)
    if p.is_file():
        return str(p.parent), {"gguf_file": p.name}
    return str(model), {"gguf_file": gguf_file}


def load_tokenizer(model: str, *, gguf_file: str | None = None, trust_remote_code: bool = False, **kw: Any) -> Any:
    from transformers import AutoTokenizer

    path, extra = source_kwargs(model, gguf_file)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **extra, **kw)


def load_model(
    auto_class: Any,
    model: str,
    *,
    gguf_file: str | None = None,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    **kw: Any,
) -> Any:
    """``auto_class.from_pretrained`` with dtype, GGUF and device handled; returns the model in eval mode."""
    path, extra = source_kwargs(model, gguf_file)
    m = auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code, **extra, **kw)
    if getattr(m, "hf_quantizer", None) is not None and gguf_file is not None:
        m.hf_quantizer = None  # GGUF weights are dequantised on load; nothing is quantised any more
    return m.to(device).eval()
