"""Resolve where a model comes from (hub id, local directory, GGUF file) and which device/dtype it runs in.

A model that cannot be found or loaded raises one line (:class:`~mmrank.errors.ModelNotFoundError` /
:class:`~mmrank.errors.ModelLoadError`) naming the model, where mmrank looked and how to pass a local path,
instead of a library traceback (:func:`model_errors`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from mmrank.errors import MissingDependencyError, MmrankError, ModelLoadError, ModelNotFoundError


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return "~/.cache/huggingface/hub"


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


@contextlib.contextmanager
def model_errors(
    model: str | Path, *, what: str = "model", catch: tuple[type[BaseException], ...] = (OSError,)
) -> Iterator[None]:
    """Turn a library's failure to find or load ``model`` into one typed line.

    ``catch`` lists the exception types the loading library uses for that (transformers: ``OSError``; open_clip
    also ``RuntimeError``). A name that is no local path becomes :class:`ModelNotFoundError` (where mmrank looked,
    how to pass a local path); a local path that fails to load becomes :class:`ModelLoadError` with the cause.
    """
    try:
        yield
    except MmrankError:
        raise
    except Exception as e:
        name = str(model)
        local = Path(name).expanduser()
        if local.exists():  # the library failed on files that are there: config, weights, tokenizer...
            raise ModelLoadError(f"cannot load {what} {name!r} from {local.resolve()} ({_first_line(e)})") from e
        if not isinstance(e, catch):
            raise
        mode = "offline mode (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE set)" if _offline() else "the hub was unreachable"
        raise ModelNotFoundError(
            f"{what} {name!r} not found: no local file or folder at {local.resolve()}, and not in the Hugging Face "
            f"cache {_hub_cache()} ({mode}); pass a local path instead (model='/path/to/model-folder' in Python, "
            f"--model /path/to/model-folder on the command line)"
        ) from e


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


def _looks_local(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or "\\" in model or model.count("/") > 1


def check_source(model: str, what: str = "model") -> None:
    """Raise :class:`ModelNotFoundError` at once for a local-looking path that does not exist."""
    if _looks_local(str(model)) and not Path(model).expanduser().exists():
        raise ModelNotFoundError(f"{what} {model!r}: no such folder; pass the local folder that holds its files")


def from_pretrained(loader: Any, model: str, *args: Any, what: str = "model", **kw: Any) -> Any:
    """``loader(model, *args, **kw)`` with a missing or broken model turned into one typed line
    (:func:`model_errors`)."""
    check_source(model, what)
    with model_errors(model, what=what):
        return loader(model, *args, **kw)


def adapter_base(model: str) -> str | None:
    """The base model named by a PEFT adapter folder (``adapter_config.json`` without ``config.json``), else None."""
    import json

    p = Path(model).expanduser()
    cfg = p / "adapter_config.json"
    if not cfg.is_file() or (p / "config.json").is_file():
        return None
    base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    return str(base) if base else None


def load_tokenizer(model: str, *, gguf_file: str | None = None, trust_remote_code: bool = False, **kw: Any) -> Any:
    from transformers import AutoTokenizer

    path, extra = source_kwargs(model, gguf_file)
    with model_errors(model, what="tokenizer of model"):
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
    with model_errors(model):
        m = auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code, **extra, **kw)
    if getattr(m, "hf_quantizer", None) is not None and gguf_file is not None:
        m.hf_quantizer = None  # GGUF weights are dequantised on load; nothing is quantised any more
    return m.to(device).eval()


T = TypeVar("T")


class InstanceCache(Generic[T]):
    """One shared backend instance per ``(model, keyword arguments)`` (thread-safe), e.g. ``get_causal_lm``."""

    def __init__(self, factory: Callable[..., T]) -> None:
        self.factory = factory
        self._items: dict[tuple[Any, ...], T] = {}
        self._lock = threading.Lock()

    def get(self, model: str, **kw: Any) -> T:
        key = (str(model), tuple(sorted((k, str(v)) for k, v in kw.items())))
        with self._lock:
            if key not in self._items:
                self._items[key] = self.factory(model, **kw)
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def load_adapter(model: Any, adapter: str, *, merge: bool) -> Any:
    """``model`` with the PEFT (LoRA) adapter folder or hub id ``adapter`` loaded (LoRA layers injected in place),
    merged into the weights and unloaded when ``merge``."""
    try:
        from peft import PeftModel
    except ImportError as e:  # pragma: no cover - peft is a core dependency of the LLM extra
        raise MissingDependencyError("loading a LoRA adapter needs peft: pip install 'mmrank[llm]'") from e
    check_source(adapter, "adapter")
    with model_errors(adapter, what="adapter", catch=(OSError, ValueError)):
        peft_model = PeftModel.from_pretrained(model, adapter)
    return peft_model.merge_and_unload() if merge else peft_model
