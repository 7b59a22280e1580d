"""Causal-LM backend shared by every LLM reranker (pointwise, listwise, setwise, groupwise, ICR, E2Rank).

API (stable; other modules code against it)::

    lm = CausalLM(model, gguf_file=None, device=None, dtype="auto", max_length=4096, batch_size=8,
                  trust_remote_code=False)          # or get_causal_lm(model, **kw): one shared instance per config
    lm.tokenizer, lm.model, lm.device
    lm.chat(messages, add_generation_prompt=True) -> str          # chat template applied, as text
    lm.generate(prompts, max_new_tokens=256, temperature=0.0, top_p=1.0, seed=0) -> list[str]
        # prompts already templated; batched, length-sorted, left padded; only the new text; greedy at temperature 0
    lm.generate_detailed(...) -> list[Generation]   # same, plus generated token ids and their log-probabilities
    lm.next_token_logits(prompts, prefixes=None) -> Tensor (n, vocab)  # at the last position, float32, CPU
        # prefixes[i] (a string prompts[i] starts with): its KV cache is computed once per distinct prefix and reused
    lm.continuation_logprobs(prompts, continuations) -> list[np.ndarray]  # log p(token | everything before it)
    lm.last_hidden_states(prompts) -> Tensor (n, hidden)   # final-layer state at the last token (E2Rank pooling)
    lm.token_id(text) -> int        # id of a single-token string ("yes", " yes", "1"); LabelTokenError otherwise
    lm.encode(text) -> list[int]; lm.truncate_text(text, max_tokens) -> str
    lm.calls                        # batched model invocations so far (each forward or generate batch counts one)

A model is a hub id, a local directory, or a GGUF file (``gguf_file=`` a file name inside ``model`` or a path;
dequantised on load, so convert once with ``save_pretrained`` for speed). ``dtype="auto"`` is float32 on CPU and
bfloat16 on CUDA. Prompts are tokenised without added special tokens (the chat template writes them). A prompt longer
than ``max_length`` keeps its last ``max_length`` tokens and increments ``lm.truncated``; rerankers truncate documents
before that happens.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mmrank.llm.batching import length_sorted_batches, pad_left, pad_right
from mmrank.llm.loading import InstanceCache, load_model, load_tokenizer, resolve_device, resolve_dtype
from mmrank.llm.tokens import single_token_id, stop_token_ids


@dataclass(slots=True)
class Generation:
    """One generated continuation: its text, token ids and the log-probability of each token (untempered)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


class CausalLM:
    """A transformers causal LM with batched scoring, generation and prefix-KV reuse."""

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 4096,
        batch_size: int = 8,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM

        self.name = str(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(model, gguf_file=gguf_file, trust_remote_code=trust_remote_code)
        self.model = load_model(
            AutoModelForCausalLM,
            model,
            gguf_file=gguf_file,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=trust_remote_code,
        )
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.eos_ids = self._eos_ids()
        self.calls = 0
        self.truncated = 0
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    # ------------------------------------------------------------------ text and tokens
    def chat(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True, **template_kw: Any) -> str:
        """The chat template applied to ``messages``, as text (e.g. ``enable_thinking=False`` passes through)."""
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, **template_kw
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without added special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def token_id(self, text: str) -> int:
        return single_token_id(self.tokenizer, text)

    def truncate_text(self, text: str, max_tokens: int | None) -> str:
        """``text`` cut to its first ``max_tokens`` tokens (unchanged when shorter or ``max_tokens`` is None)."""
        if max_tokens is None:
            return text
        ids = self.encode(text)
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def _fit(self, ids: list[int], reserve: int = 0) -> list[int]:
        limit = self.max_length - reserve
        if len(ids) > limit:
            self.truncated += 1
            return ids[len(ids) - limit :]
        return ids

    def _eos_ids(self) -> list[int]:
        return stop_token_ids(self.tokenizer, self.model)

    # ------------------------------------------------------------------ forward helpers
    def _forward_hidden(self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: Any = None) -> Any:
        kw: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        kw["position_ids"] = pos.to(self.device)
        if cache is not None:
            kw[self._cache_arg] = cache
            kw["use_cache"] = True
        else:
            kw["use_cache"] = False
        self.calls += 1
        return self.model.base_model(**kw)

    def _lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.model.get_output_embeddings()(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits.float()

    def prefix_cache(self, ids: Sequence[int]) -> Any:
        """KV cache of one token sequence (batch 1), for reuse by :meth:`expand_cache`."""
        t = torch.tensor([list(ids)], dtype=torch.long)
        m = torch.ones_like(t)
        pos = torch.arange(t.shape[1]).unsqueeze(0)
        cache = self._new_cache()
        self._forward_hidden(t, m, pos, cache=cache)  # fills ``cache`` in place
        return cache

    def _new_cache(self) -> Any:
        from transformers.cache_utils import DynamicCache

        return DynamicCache(config=self.model.config)

    def expand_cache(self, cache: Any, batch: int) -> Any:
        """A fresh cache holding ``cache``'s keys/values repeated ``batch`` times (the original is untouched)."""
        from transformers.cache_utils import DynamicCache

        data = [(lay.keys.expand(batch, -1, -1, -1), lay.values.expand(batch, -1, -1, -1)) for lay in cache.layers]
        return DynamicCache(ddp_cache_data=data, config=self.model.config)

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def next_token_logits(self, prompts: Sequence[str], prefixes: Sequence[str] | None = None) -> torch.Tensor:
        """Logits of the next token after each prompt, ``(n, vocab)`` float32 on CPU.

        With ``prefixes`` (``prompts[i].startswith(prefixes[i])``), prefix and rest are tokenised separately and
        every distinct prefix is encoded once; its KV cache serves all prompts that share it. Without, the whole
        prompt is tokenised at once.
        """
        if not prompts:
            return torch.zeros((0, self.model.config.vocab_size))
        if prefixes is None:
            seqs = [self._fit(self.encode(p)) for p in prompts]
            return self._last_logits(seqs)
        if len(prefixes) != len(prompts):
            raise ValueError("one prefix per prompt is needed")
        groups: dict[str, list[int]] = {}
        for i, (p, pre) in enumerate(zip(prompts, prefixes, strict=True)):
            if not p.startswith(pre):
                raise ValueError(f"prompt {i} does not start with its prefix")
            groups.setdefault(pre, []).append(i)
        out: torch.Tensor | None = None
        for pre, idx in groups.items():
            pre_ids = self.encode(pre)
            rests = [self.encode(prompts[i][len(pre) :]) for i in idx]
            if not pre_ids:
                logits = self._last_logits([self._fit(r) for r in rests])
            else:
                rests = [self._fit(r, reserve=len(pre_ids)) if r else [] for r in rests]
                logits = self._last_logits_cached(pre_ids, rests)
            if out is None:
                out = torch.empty((len(prompts), logits.shape[1]))
            out[idx] = logits
        assert out is not None
        return out

    def _last_logits(self, seqs: list[list[int]]) -> torch.Tensor:
        rows: dict[int, torch.Tensor] = {}
        for b in length_sorted_batches([len(s) for s in seqs], self.batch_size):
            ids, mask = pad_right([seqs[i] for i in b], self.pad_id)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            h = self._forward_hidden(ids, mask, pos).last_hidden_state
            last = mask.sum(-1) - 1
            logits = self._lm_head(h[torch.arange(len(b)), last.to(h.device)]).cpu()
            for j, i in enumerate(b):
                rows[i] = logits[j]
        return torch.stack([rows[i] for i in range(len(seqs))])

    def _last_logits_cached(self, pre_ids: list[int], rests: list[list[int]]) -> torch.Tensor:
        cache = self.prefix_cache(pre_ids)
        p = len(pre_ids)
        pre_hidden_logits: torch.Tensor | None = None
        rows: dict[int, torch.Tensor] = {}
        nonempty = [i for i, r in enumerate(rests) if r]
        for i in (i for i, r in enumerate(rests) if not r):  # prompt == prefix: logits at the prefix's end
            if pre_hidden_logits is None:
                pre_hidden_logits = self._last_logits([pre_ids])[0]
            rows[i] = pre_hidden_logits
        for b in length_sorted_batches([len(rests[i]) for i in nonempty], self.batch_size):
            b = [nonempty[j] for j in b]
            ids, mask = pad_right([rests[i] for i in b], self.pad_id)
            full_mask = torch.cat([torch.ones((len(b), p), dtype=mask.dtype), mask], dim=1)
            pos = p + torch.arange(ids.shape[1]).unsqueeze(0).expand(len(b), -1)
            h = self._forward_hidden(ids, full_mask, pos, cache=self.expand_cache(cache, len(b))).last_hidden_state
            last = mask.sum(-1) - 1
            logits = self._lm_head(h[torch.arange(len(b)), last.to(h.device)]).cpu()
            for j, i in enumerate(b):
                rows[i] = logits[j]
        return torch.stack([rows[i] for i in range(len(rests))])

    @torch.inference_mode()
    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        """Per-token ``log p(c_t | prompt, c_<t)`` of each continuation (tokenised apart from its prompt)."""
        if len(prompts) != len(continuations):
            raise ValueError("one continuation per prompt is needed")
        conts = [self.encode(c) for c in continuations]
        if any(not c for c in conts):
            raise ValueError("empty continuation: nothing to score")
        seqs = [self._fit(self.encode(p), reserve=len(c)) + c for p, c in zip(prompts, conts, strict=True)]
        out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
        for b in length_sorted_batches([len(s) for s in seqs], self.batch_size):
            ids, mask = pad_right([seqs[i] for i in b], self.pad_id)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            h = self._forward_hidden(ids, mask, pos).last_hidden_state
            for j, i in enumerate(b):
                n, c = len(seqs[i]), conts[i]
                # hidden state at t predicts token t+1
                lp = torch.log_softmax(self._lm_head(h[j, n - len(c) - 1 : n - 1]), dim=-1)
                tgt = torch.tensor(c, device=lp.device)
                out[i] = lp[torch.arange(len(c)), tgt].cpu().numpy().astype(np.float64)
        return out

    @torch.inference_mode()
    def last_hidden_states(self, prompts: Sequence[str]) -> torch.Tensor:
        """Final-layer hidden state at each prompt's last token, ``(n, hidden)`` float32 on CPU."""
        seqs = [self._fit(self.encode(p)) for p in prompts]
        rows: dict[int, torch.Tensor] = {}
        for b in length_sorted_batches([len(s) for s in seqs], self.batch_size):
            ids, mask = pad_right([seqs[i] for i in b], self.pad_id)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            h = self._forward_hidden(ids, mask, pos).last_hidden_state
            last = (mask.sum(-1) - 1).to(h.device)
            v = h[torch.arange(len(b)), last].float().cpu()
            for j, i in enumerate(b):
                rows[i] = v[j]
        return torch.stack([rows[i] for i in range(len(seqs))])

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[str]:
        """Continue every (already templated) prompt; returns only the new text."""
        gens = self._generate(prompts, max_new_tokens, temperature, top_p, seed, with_logprobs=False)
        return [g.text for g in gens]

    @torch.inference_mode()
    def generate_detailed(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[Generation]:
        """:meth:`generate` plus the generated token ids and their log-probabilities under the raw logits."""
        return self._generate(prompts, max_new_tokens, temperature, top_p, seed, with_logprobs=True)

    @torch.inference_mode()
    def _generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        *,
        with_logprobs: bool,
    ) -> list[Generation]:
        seqs = [self._fit(self.encode(p), reserve=max_new_tokens) for p in prompts]
        out: list[Generation | None] = [None] * len(seqs)
        torch.manual_seed(seed)
        sample = temperature > 0
        for b in length_sorted_batches([len(s) for s in seqs], self.batch_size):
            ids, mask, _ = pad_left([seqs[i] for i in b], self.pad_id)
            kw: dict[str, Any] = {"do_sample": sample, "max_new_tokens": max_new_tokens}
            if sample:
                kw |= {"temperature": temperature, "top_p": top_p, "top_k": None}
            else:
                kw |= {"temperature": None, "top_p": None, "top_k": None}
            self.calls += 1
            res = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_ids,
                return_dict_in_generate=True,
                output_logits=with_logprobs,
                **kw,
            )
            new_dev = res.sequences[:, ids.shape[1] :]
            new = new_dev.cpu()
            lps = torch.zeros(new.shape, dtype=torch.float32)
            if with_logprobs:  # gather each step's chosen token: never hold a (batch, steps, vocab) tensor
                steps = [
                    torch.log_softmax(x.float(), dim=-1).gather(1, new_dev[:, t : t + 1].to(x.device))
                    for t, x in enumerate(res.logits)
                ]
                lps = torch.cat(steps, dim=1).cpu()
            for j, i in enumerate(b):
                toks: list[int] = []
                lp: list[float] = []
                for t in range(new.shape[1]):
                    tok = int(new[j, t])
                    if tok in self.eos_ids:
                        break
                    toks.append(tok)
                    lp.append(float(lps[j, t]))
                text = self.tokenizer.decode(toks, skip_special_tokens=True)
                out[i] = Generation(text, toks, lp)
        return [g for g in out if g is not None]


_SHARED: InstanceCache[CausalLM] = InstanceCache(CausalLM)


def get_causal_lm(model: str, **kw: Any) -> CausalLM:
    """A :class:`CausalLM` shared by every caller with the same ``model`` and keyword arguments."""
    return _SHARED.get(model, **kw)


def clear_causal_lm_cache() -> None:
    """Forget shared models (frees memory once no reranker holds them)."""
    _SHARED.clear()
