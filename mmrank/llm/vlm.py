"""Vision-language model backend shared by every multimodal LLM reranker (MM-R5, the VLM yes/no heads, training).

Sits beside :mod:`mmrank.llm.causal` (one backend, many methods) and shares its loading, dtype/device, batching and
token helpers. API (stable; other modules code against it)::

    vlm = VLM(model, device=None, dtype="auto", min_pixels=None, max_pixels=None, max_length=32768, batch_size=4,
              adapter=None, merge_adapter=False, trust_remote_code=False)     # or get_vlm(model, **kw): shared
    vlm.processor, vlm.model, vlm.tokenizer, vlm.device, vlm.calls
    vlm.chat(conversation) -> str                  # the chat template as text (images as the model's placeholders)
    vlm.encode(conversation) -> Encoded            # images loaded and resized, processor run once; .length tokens
    vlm.prepare_image(source) -> PIL.Image         # decoded and resized to the pixel budget (as encode would)
    vlm.next_token_logits(conversations) -> Tensor (n, vocab)   # float32 CPU, after the generation prompt
    vlm.generate(conversations, max_new_tokens=256, temperature=0.0, top_p=1.0, top_k=None, seed=0) -> list[str]
    vlm.last_logits(conversations) -> Tensor (n, vocab)         # one batch on the model's device, autograd as the
                                                                # ambient grad mode says (training)
    vlm.token_id("yes") -> int; vlm.truncate_text(text, max_tokens) -> str
    is_vlm(model) -> bool                          # a vision-language model? (from its config alone)

A conversation is a list of chat messages in the Qwen-VL format: ``{"role": "system"|"user"|"assistant",
"content": str | [{"type": "text", "text": str}, {"type": "image", "image": PIL.Image | str path | bytes | Item}]}``.
Wherever a conversation is accepted, an :class:`Encoded` (from :meth:`VLM.encode`) is accepted too, so a caller
that measured a prompt's length does not process its images twice.

* **Images**: a path, bytes, a PIL image, or any object with ``load_image()`` (an ``Item``, a ``Query``, a document
  page whose image renders lazily) is decoded with :func:`mmrank.types.load_image` (typed
  :class:`~mmrank.errors.ImageLoadError` naming the file). ``http(s)://`` and ``data:`` strings are left to
  qwen-vl-utils. For Qwen-VL processors (an image processor with ``patch_size`` and ``merge_size``) images go
  through ``qwen_vl_utils.process_vision_info`` (aspect-preserving resize to multiples of ``patch_size * 2`` within
  ``[min_pixels, max_pixels]``); other processors get the decoded images as they are.
* **Pixel budget**: ``min_pixels`` / ``max_pixels`` default to the processor's own (``size.shortest_edge`` /
  ``longest_edge``); when given they are set on the processor and on every image part (an image part's own
  ``min_pixels`` / ``max_pixels`` keys win).
* **Batching**: every conversation is processed once (in spans of ``batch_size * sort_window`` conversations, to
  bound the memory held by processed images), then batches of similar length (longest first) are padded
  on the ``padding_side`` (``"left"`` default, or ``"right"``; Qwen's M-RoPE positions follow the attention mask
  either way) and the logits are taken at each row's last real token.
* **Generation**: HF ``generate`` with a fresh generation config (the checkpoint's ``generation_config`` sampling
  fields are *not* applied: pass ``temperature`` / ``top_p`` / ``top_k`` explicitly). ``temperature > 0`` samples
  with a local :class:`torch.Generator` per conversation, seeded by ``seed`` (an int for all, or one per
  conversation), inside a logits processor: the global random state is never touched, and a conversation's
  sample does not depend on which others share its batch.
* **Lengths**: an input whose tokens (plus ``max_new_tokens`` when generating) exceed ``max_length`` raises
  :class:`~mmrank.errors.ContextLengthError` (image tokens cannot be cut); rerankers split or truncate before.
* **Precision and placement**: ``dtype="auto"`` is bfloat16 on CUDA, float32 on CPU; the model is moved to
  ``device`` (default CUDA when available); pixel tensors are cast to the model's dtype.
* **LoRA**: ``adapter=`` a PEFT adapter folder (or hub id) is loaded with ``peft`` on top of ``model``;
  ``merge_adapter=True`` merges it into the weights. ``model`` may itself be an adapter folder
  (``adapter_config.json`` without ``config.json``): its base model is loaded from ``base_model_name_or_path``.
* **Missing models**: a path that does not exist, or a hub id that cannot be fetched (offline), raises
  :class:`~mmrank.errors.ModelNotFoundError` in one line naming the model and how to pass a local folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmrank.errors import ContextLengthError, ImageLoadError
from mmrank.llm.batching import length_sorted_batches
from mmrank.llm.loading import (
    InstanceCache,
    adapter_base,
    from_pretrained,
    load_adapter,
    load_model,
    resolve_device,
    resolve_dtype,
)
from mmrank.llm.tokens import single_token_id, stop_token_ids
from mmrank.types import load_image

Conversation = list[dict[str, Any]]

_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "tokenizer_config.json")


@dataclass(slots=True)
class Encoded:
    """One conversation after the chat template and the processor: a batch of one, ready to collate."""

    text: str
    inputs: dict[str, torch.Tensor]
    images: int = 0

    @property
    def length(self) -> int:
        """Number of tokens, image tokens included."""
        return int(self.inputs["input_ids"].shape[1])


class LocalSampler:
    """Logits processor that samples each row with its own seeded :class:`torch.Generator`.

    Temperature, then top-k, then nucleus (top-p) filtering; the chosen token gets logit 0 and every other
    ``-inf``, so HF's greedy step picks it. The global random state is never used.
    """

    def __init__(
        self, temperature: float, top_p: float, top_k: int | None, seeds: Sequence[int], device: torch.device
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"sampling needs temperature > 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float() / self.temperature
        if self.top_k is not None and 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self.top_p < 1.0:
            sp, si = torch.sort(probs, dim=-1, descending=True)
            drop = (sp.cumsum(-1) - sp) >= self.top_p  # mass before this token already reaches top_p
            sp = sp.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, si, sp)
        out = torch.full_like(scores, float("-inf"))
        for i, g in enumerate(self.generators):
            tok = torch.multinomial(probs[i], 1, generator=g)
            out[i, tok] = 0.0
        return out


class VLM:
    """A transformers vision-language model (processor + image-text-to-text model) for scoring and generation."""

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_length: int = 32768,
        batch_size: int = 4,
        padding_side: str = "left",
        adapter: str | None = None,
        merge_adapter: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        model = str(model)
        base = adapter_base(model)
        if base is not None:
            if adapter is not None:
                raise ValueError(f"{model!r} is an adapter folder; do not pass adapter= as well")
            model, adapter = base, model
        self.name = model if adapter is None else f"{model}+{adapter}"
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_length = max_length
        self.batch_size = batch_size
        self.padding_side = padding_side
        self.sort_window = 16  # next_token_logits sorts by length within spans of batch_size * sort_window
        proc_src = adapter if adapter is not None and _has_processor(adapter) else model
        self.processor = from_pretrained(
            AutoProcessor.from_pretrained, proc_src, trust_remote_code=trust_remote_code, what="processor"
        )
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        hf = load_model(
            AutoModelForImageTextToText,
            model,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=trust_remote_code,
        )
        self.model: Any = hf
        if adapter is not None:
            self.model = load_adapter(hf, adapter, merge=merge_adapter).to(self.device).eval()
            if merge_adapter:
                hf = self.model
        self.hf_model: Any = hf  # the transformers model (LoRA layers injected in place when not merged)
        self.adapter = adapter
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.eos_ids = stop_token_ids(self.tokenizer, hf)
        self.calls = 0
        ip = getattr(self.processor, "image_processor", None)
        self.qwen_vision = ip is not None and hasattr(ip, "merge_size") and hasattr(ip, "patch_size")
        self.min_pixels, self.max_pixels = _pixel_bounds(ip, min_pixels, max_pixels)

    # ------------------------------------------------------------------ text and tokens
    def token_id(self, text: str) -> int:
        return single_token_id(self.tokenizer, text)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain ``text`` without added special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def truncate_text(self, text: str, max_tokens: int | None) -> str:
        """``text`` cut to its first ``max_tokens`` tokens (unchanged when shorter or ``max_tokens`` is None)."""
        if max_tokens is None:
            return text
        ids = self.encode_text(text)
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``conversation`` (images decoded first), as text."""
        return self._template(self.normalize(conversation), add_generation_prompt)

    def _template(self, msgs: Conversation, add_generation_prompt: bool) -> str:
        return str(
            self.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)
        )

    # ------------------------------------------------------------------ images and encoding
    def normalize(self, conversation: Conversation) -> Conversation:
        """A copy of ``conversation`` with every image part decoded to a PIL image (and pixel bounds added)."""
        out = []
        for m in conversation:
            content = m.get("content")
            if isinstance(content, list):
                content = [self._part(p) for p in content]
            out.append({**m, "content": content})
        return out

    def _part(self, part: Any) -> Any:
        if not isinstance(part, dict):
            raise TypeError(f"a content part must be a dict, got {type(part).__name__}")
        if part.get("type") != "image" and "image" not in part:
            return part
        src = part.get("image")
        if src is None:
            raise TypeError("an image part needs an 'image' value (PIL image, path, bytes or item)")
        out = {**part, "type": "image"}
        if hasattr(src, "load_image"):
            out["image"] = src.load_image()
        elif isinstance(src, str) and src.startswith(("http://", "https://", "data:")):
            if not self.qwen_vision:
                raise TypeError("URL / data-URI images are supported for Qwen-VL processors only; pass a path")
            out["image"] = src
        else:
            if isinstance(src, str) and src.startswith("file://"):
                src = src[len("file://") :]
            out["image"] = load_image(src)
        if self.qwen_vision:
            if self.min_pixels is not None:
                out.setdefault("min_pixels", self.min_pixels)
            if self.max_pixels is not None:
                out.setdefault("max_pixels", self.max_pixels)
        return out

    def prepare_image(self, source: Any) -> Any:
        """``source`` decoded to an RGB PIL image and, for Qwen-VL processors, resized to the pixel budget exactly
        as :meth:`encode` would (so a prepared image passes through unchanged later and takes less memory)."""
        part = self._part({"type": "image", "image": source})
        if not self.qwen_vision:
            return part["image"]
        from qwen_vl_utils import fetch_image

        try:
            return fetch_image(part, image_patch_size=int(self.processor.image_processor.patch_size))
        except (ValueError, AssertionError, OSError) as e:
            raise ImageLoadError(f"{self.name}: cannot prepare image ({e})") from e

    def _images(self, msgs: Conversation) -> list[Any]:
        if self.qwen_vision:
            from qwen_vl_utils import process_vision_info

            patch = int(getattr(self.processor.image_processor, "patch_size", 14))
            try:
                images, _videos = process_vision_info(msgs, image_patch_size=patch)
            except (ValueError, AssertionError, OSError) as e:  # e.g. aspect ratio over 200, unreadable URL
                raise ImageLoadError(f"{self.name}: cannot prepare an image of the conversation ({e})") from e
            return list(images or [])
        return [p["image"] for m in msgs if isinstance(m.get("content"), list) for p in m["content"] if "image" in p]

    def encode(self, conversation: Conversation | Encoded, *, add_generation_prompt: bool = True) -> Encoded:
        """Template, decode, resize and tokenise one conversation (a batch of one; raises ImageLoadError)."""
        if isinstance(conversation, Encoded):
            return conversation
        msgs = self.normalize(conversation)
        text = self._template(msgs, add_generation_prompt)
        images = self._images(msgs)
        kw: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            kw["images"] = images
        inputs = self.processor(**kw)
        return Encoded(text, {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}, len(images))

    def collate(self, encs: Sequence[Encoded], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """Pad the sequence tensors of ``encs`` (input ids, masks, token types) on ``padding_side`` and
        concatenate the rest (pixel values, image grids) in order; returns CPU tensors."""
        side = padding_side or self.padding_side
        n = max(e.length for e in encs)
        out: dict[str, torch.Tensor] = {}
        keys = dict.fromkeys(k for e in encs for k in e.inputs)
        for k in keys:
            have = [e for e in encs if k in e.inputs]
            if _is_sequence_key(k, have[0]) and len(have) == len(encs):
                fill = self.pad_id if k == "input_ids" else 0
                rows = []
                for e in encs:
                    v = e.inputs[k]
                    pad = torch.full((1, n - v.shape[1]), fill, dtype=v.dtype)
                    rows.append(torch.cat([pad, v] if side == "left" else [v, pad], dim=1))
                out[k] = torch.cat(rows, dim=0)
            else:
                out[k] = torch.cat([e.inputs[k] for e in have], dim=0)
        return out

    def _to_device(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            k: v.to(self.device, dtype=self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
        }

    def _check_length(self, encs: Sequence[Encoded], reserve: int = 0, offset: int = 0) -> None:
        for i, e in enumerate(encs):
            if e.length + reserve > self.max_length:
                extra = f" + {reserve} new tokens" if reserve else ""
                raise ContextLengthError(
                    f"{self.name}: conversation {offset + i} has {e.length} tokens{extra}, "
                    f"over max_length={self.max_length}"
                )

    # ------------------------------------------------------------------ scoring
    def last_logits(self, conversations: Sequence[Conversation | Encoded]) -> torch.Tensor:
        """Next-token logits after each conversation as ONE batch, ``(n, vocab)`` float32 on the model's device.

        No sorting, no ``inference_mode``: gradients flow when torch's grad mode is on (training). Scoring
        callers use :meth:`next_token_logits`, which batches by length without autograd.
        """
        encs = [self.encode(c) for c in conversations]
        self._check_length(encs)
        batch = self.collate(encs)
        mask = batch["attention_mask"]
        if self.padding_side == "left":
            last = torch.full((len(encs),), mask.shape[1] - 1, dtype=torch.long)
        else:
            last = mask.sum(-1) - 1
        self.calls += 1
        h = self.hf_model.base_model(**self._to_device(batch), use_cache=False).last_hidden_state
        hidden = h[torch.arange(len(encs), device=h.device), last.to(h.device)]
        logits = self.hf_model.get_output_embeddings()(hidden)
        cap = getattr(getattr(self.hf_model.config, "text_config", self.hf_model.config), "final_logit_softcapping", 0)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits.float()

    @torch.inference_mode()
    def next_token_logits(self, conversations: Sequence[Conversation | Encoded]) -> torch.Tensor:
        """Logits of the next token after each conversation's generation prompt, ``(n, vocab)`` float32 on CPU;
        conversations are processed once and run in length-sorted batches of ``batch_size``."""
        if not conversations:
            return torch.zeros((0, self.hf_model.get_output_embeddings().weight.shape[0]))
        rows: dict[int, torch.Tensor] = {}
        span = self.batch_size * self.sort_window
        for start in range(0, len(conversations), span):  # bounded memory: processed images of one span at a time
            encs = [self.encode(c) for c in conversations[start : start + span]]
            self._check_length(encs, offset=start)
            for b in length_sorted_batches([e.length for e in encs], self.batch_size):
                logits = self.last_logits([encs[i] for i in b]).cpu()
                for j, i in enumerate(b):
                    rows[start + i] = logits[j]
        return torch.stack([rows[i] for i in range(len(conversations))])

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(
        self,
        conversations: Sequence[Conversation | Encoded],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int | None = None,
        seed: int | Sequence[int] = 0,
    ) -> list[str]:
        """Continue every conversation after its generation prompt; returns only the new text (special tokens
        removed). Greedy at ``temperature == 0``; else sampled with one local generator per conversation."""
        from transformers import GenerationConfig, LogitsProcessorList

        if not conversations:
            return []
        encs = [self.encode(c) for c in conversations]
        self._check_length(encs, reserve=max_new_tokens)
        seeds = [int(seed)] * len(encs) if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != len(encs):
            raise ValueError(f"{len(seeds)} seeds for {len(encs)} conversations")
        out: list[str] = [""] * len(encs)
        for b in length_sorted_batches([e.length for e in encs], self.batch_size):
            batch = self.collate([encs[i] for i in b], padding_side="left")
            gc = GenerationConfig(
                max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_ids, pad_token_id=self.pad_id
            )
            procs = LogitsProcessorList()
            if temperature > 0:
                procs.append(LocalSampler(temperature, top_p, top_k, [seeds[i] for i in b], self.device))
            self.calls += 1
            seqs = self.model.generate(**self._to_device(batch), generation_config=gc, logits_processor=procs)
            new = seqs[:, batch["input_ids"].shape[1] :].cpu()
            for j, i in enumerate(b):
                toks: list[int] = []
                for t in new[j].tolist():
                    if t in self.eos_ids:
                        break
                    toks.append(int(t))
                out[i] = self.tokenizer.decode(toks, skip_special_tokens=True)
        return out


def _is_sequence_key(key: str, enc: Encoded) -> bool:
    v = enc.inputs[key]
    return (key.endswith("_ids") or key.endswith("_mask")) and v.dim() == 2 and v.shape[1] == enc.length


def _has_processor(path: str) -> bool:
    p = Path(path).expanduser()
    return p.is_dir() and any((p / f).is_file() for f in _PROCESSOR_FILES)


def _pixel_bounds(ip: Any, min_pixels: int | None, max_pixels: int | None) -> tuple[int | None, int | None]:
    """Resolve the pixel budget (the processor's own when not given) and set it on the image processor."""
    size = getattr(ip, "size", None)
    cur = (
        dict(size)
        if isinstance(size, dict)
        else ({k: getattr(size, k, None) for k in ("shortest_edge", "longest_edge")} if size is not None else {})
    )
    lo = min_pixels if min_pixels is not None else cur.get("shortest_edge")
    hi = max_pixels if max_pixels is not None else cur.get("longest_edge")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min_pixels={lo} is above max_pixels={hi}")
    if ip is not None and (min_pixels is not None or max_pixels is not None) and size is not None:
        ip.size = {**cur, "shortest_edge": lo, "longest_edge": hi}
    return lo, hi


def is_vlm(model: str, *, trust_remote_code: bool = False) -> bool:
    """Whether ``model`` (hub id, folder, or LoRA adapter folder) is a vision-language model (its config has a
    ``vision_config``), read from the config alone."""
    from transformers import AutoConfig

    base = adapter_base(str(model)) or str(model)
    cfg = from_pretrained(AutoConfig.from_pretrained, base, trust_remote_code=trust_remote_code)
    return getattr(cfg, "vision_config", None) is not None


_SHARED: InstanceCache[VLM] = InstanceCache(VLM)


def get_vlm(model: str, **kw: Any) -> VLM:
    """A :class:`VLM` shared by every caller with the same ``model`` and keyword arguments."""
    return _SHARED.get(model, **kw)


def clear_vlm_cache() -> None:
    """Forget shared VLMs (frees memory once no reranker holds them)."""
    _SHARED.clear()
