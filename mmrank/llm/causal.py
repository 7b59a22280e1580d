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
    lm.next_token_logits_ids(seqs, prefix_lens=None) -> Tensor (n, vocab)  # the same from token ids
    lm.last_logits_ids(seqs) -> Tensor (n, vocab)  # the same with autograd (training), no prefix cache
    lm.continuation_logprobs(prompts, continuations) -> list[np.ndarray]  # log p(token | everything before it)
    lm.last_hidden_states(prompts) -> Tensor (n, hidden)   # final-layer state at the last token (E2Rank pooling)
    lm.span_attention(cache, n_ctx, span) -> Tensor (n_ctx + len(span),)  # attention a span pays, fp32 (ICR)
    lm.token_id(text) -> int        # id of a single-token string ("yes", " yes", "1"); LabelTokenError otherwise
    lm.encode(text) -> list[int]; lm.truncate_text(text, max_tokens) -> str; lm.count(text) -> int
    lm.calls                        # batched model invocations so far (each forward or generate batch counts one)

A model is a hub id, a local directory, a GGUF file, or a PEFT (LoRA) adapter folder (``adapter_config.json``
without ``config.json``, e.g. written by ``mmrank train``): its base model (``base_model_name_or_path``) is loaded
and the adapter merged into it, so a trained reranker is used like any other model folder. A GGUF file is given
by ``gguf_file=`` (a file name inside ``model`` or a path; dequantised on load, so convert once with
``save_pretrained`` for speed). ``dtype="auto"`` is float32 on CPU and bfloat16 on CUDA.
Prompts are tokenised without added special tokens (the chat template writes them).

Lengths: the backend never cuts a prompt. A prompt longer than ``max_length`` (for generation: longer than
``max_length - max_new_tokens``) raises :class:`~mmrank.errors.ContextLengthError`. Fitting is the rerankers' job:
each one cuts its *documents* (never the instructions or the query) until the prompt fits, and records it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np
import torch

from mmrank.errors import ContextLengthError
from mmrank.llm.batching import length_sorted_batches, pad_left, pad_right
from mmrank.llm.loading import (
    InstanceCache,
    adapter_base,
    load_adapter,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
)
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

        model = str(model)
        self.adapter = model if adapter_base(model) is not None else None
        if self.adapter is not None:
            model = str(adapter_base(model))
        self.name = model if self.adapter is None else f"{model}+{self.adapter}"
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
        if self.adapter is not None:
            self.model = load_adapter(self.model, self.adapter, merge=True).to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.eos_ids = self._eos_ids()
        self.calls = 0
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

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` (no special tokens added)."""
        return len(self.encode(text))

    def _check(self, ids: list[int], reserve: int = 0) -> list[int]:
        """``ids`` unchanged when ``len(ids) + reserve <= max_length``; :class:`ContextLengthError` otherwise."""
        if len(ids) + reserve > self.max_length:
            extra = f" + {reserve} reserved" if reserve else ""
            raise ContextLengthError(
                f"prompt of {len(ids)} tokens{extra} exceeds max_length {self.max_length} of {self.name}; "
                "the reranker must cut its documents first (or raise max_length)"
            )
        return ids

    def _eos_ids(self) -> list[int]:
        return stop_token_ids(self.tokenizer, self.model)

    # ------------------------------------------------------------------ forward helpers
    def _forward_hidden(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        pos: torch.Tensor,
        cache: Any = None,
        *,
        count: bool = True,
        **kw: Any,
    ) -> Any:
        kw |= {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        kw["position_ids"] = pos.to(self.device)
        if cache is not None:
            kw[self._cache_arg] = cache
            kw["use_cache"] = True
        else:
            kw["use_cache"] = False
        if count:
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
        if prefixes is None:
            return self.next_token_logits_ids([self.encode(p) for p in prompts])
        if len(prefixes) != len(prompts):
            raise ValueError("one prefix per prompt is needed")
        seqs, lens = [], []
        pre_ids: dict[str, list[int]] = {}
        for i, (p, pre) in enumerate(zip(prompts, prefixes, strict=True)):
            if not p.startswith(pre):
                raise ValueError(f"prompt {i} does not start with its prefix")
            if pre not in pre_ids:
                pre_ids[pre] = self.encode(pre)
            seqs.append(pre_ids[pre] + self.encode(p[len(pre) :]))
            lens.append(len(pre_ids[pre]))
        return self.next_token_logits_ids(seqs, lens)

    @torch.inference_mode()
    def next_token_logits_ids(
        self, seqs: Sequence[Sequence[int]], prefix_lens: Sequence[int] | None = None
    ) -> torch.Tensor:
        """:meth:`next_token_logits` on token ids; ``seqs[i][:prefix_lens[i]]`` is a prefix whose KV cache is
        computed once for all sequences that share it."""
        if not seqs:
            return torch.zeros((0, self.model.config.vocab_size))
        lists = [self._check(list(s)) for s in seqs]
        if any(len(s) == 0 for s in lists):
            raise ValueError("empty prompt: nothing to score")
        if prefix_lens is None:
            return self._last_logits(lists)
        if len(prefix_lens) != len(lists):
            raise ValueError("one prefix length per sequence is needed")
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (sq, k) in enumerate(zip(lists, prefix_lens, strict=True)):
            groups.setdefault(tuple(sq[: max(0, min(int(k), len(sq)))]), []).append(i)
        out: torch.Tensor | None = None
        for pre, idx in groups.items():
            rests = [lists[i][len(pre) :] for i in idx]
            if not pre:
                logits = self._last_logits(rests)
            else:
                logits = self._last_logits_cached(list(pre), rests)
            if out is None:
                out = torch.empty((len(lists), logits.shape[1]))
            out[idx] = logits
        assert out is not None
        return out

    def last_logits_ids(self, seqs: Sequence[Sequence[int]]) -> torch.Tensor:
        """Next-token logits after each token sequence, ``(n, vocab)`` float32, WITH autograd when grad mode is on
        (training); length-sorted batches of ``batch_size``, no prefix cache."""
        return self._last_logits([self._check(list(s)) for s in seqs])

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
        seqs = [self._check(self.encode(p), reserve=len(c)) + c for p, c in zip(prompts, conts, strict=True)]
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
        seqs = [self._check(self.encode(p)) for p in prompts]
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

    # ------------------------------------------------------------------ attention of a span (ICR)
    @torch.inference_mode()
    def span_attention(self, cache: Any, n_ctx: int, span: Sequence[int], *, last_only: bool = False) -> torch.Tensor:
        """Attention paid by a token span to every earlier token, from the KV cache of its context.

        ``cache`` holds ``n_ctx`` context tokens (:meth:`prefix_cache`; it is not modified). The span is run once on
        a copy of it; then, for every layer ``l`` and head ``h``, the attention probabilities of the span's queries are
        recomputed explicitly from the cached keys and the span's own post-RoPE queries, in float32:
        ``p = softmax(q k^T * scaling + causal mask)`` (the official ICR code does the same from cached query states).
        Returns ``a(k) = sum_l sum_h mean_j p[l, h, j, k]`` over the span rows ``j`` (only the last row with
        ``last_only``) for all ``n_ctx + len(span)`` keys, float64 on CPU.

        Nothing about the model is switched (no eager-attention toggle): safe on a model shared between threads.
        Supports decoder layers with ``self_attn.q_proj`` (+ optional ``q_norm``), one rotary embedding and no
        sliding-window layers (Llama, Mistral, Qwen2, Qwen3 and kin); other architectures raise ``ValueError``.
        """
        base = self.model.base_model
        layers = getattr(base, "layers", None)
        kinds = set(getattr(self.model.config, "layer_types", None) or ["full_attention"])
        if layers is None or kinds != {"full_attention"} or not hasattr(base, "rotary_emb"):
            raise ValueError(f"span_attention does not support {type(self.model).__name__} (needs full attention)")
        s = len(span)
        if s == 0:
            raise ValueError("empty span")
        ids = torch.tensor([list(span)], dtype=torch.long)
        mask = torch.ones((1, n_ctx + s), dtype=torch.long)
        pos = torch.arange(n_ctx, n_ctx + s).unsqueeze(0)
        work = self.expand_cache(cache, 1)
        out = self._forward_hidden(ids, mask, pos, cache=work, output_hidden_states=True)
        hidden = out.hidden_states  # hidden[l] is the input of layer l
        cos, sin = base.rotary_emb(hidden[0], pos.to(self.device))
        n_keys = n_ctx + s
        rows = torch.arange(n_ctx, n_keys, device=self.device).unsqueeze(1)
        keys = torch.arange(n_keys, device=self.device).unsqueeze(0)
        future = keys > rows  # (s, n_keys) causal mask of the span rows
        total = torch.zeros(n_keys, dtype=torch.float64, device=self.device)
        for li, layer in enumerate(layers):
            attn = layer.self_attn
            rope = import_module(type(attn).__module__).apply_rotary_pos_emb
            head_dim = int(
                getattr(attn, "head_dim", self.model.config.hidden_size // self.model.config.num_attention_heads)
            )
            q = attn.q_proj(layer.input_layernorm(hidden[li])).view(1, s, -1, head_dim)
            if getattr(attn, "q_norm", None) is not None:
                q = attn.q_norm(q)
            q = q.transpose(1, 2)
            q, _ = rope(q, q, cos, sin)
            k = work.layers[li].keys
            if k.shape[-2] != n_keys:
                raise ValueError(f"layer {li} caches {k.shape[-2]} keys, expected {n_keys}")
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            logits = torch.matmul(q.float(), k.float().transpose(-1, -2)) * float(attn.scaling)
            cap = getattr(self.model.config, "attn_logit_softcapping", None)
            if cap:
                logits = torch.tanh(logits / cap) * cap
            p = torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1)[0]  # (heads, s, n_keys)
            p = p[:, -1:, :] if last_only else p
            total += p.mean(dim=1).sum(dim=0).double()
        return total.cpu()

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
        seqs = [self._check(self.encode(p), reserve=max_new_tokens) for p in prompts]
        out: list[Generation | None] = [None] * len(seqs)
        # a generator of our own, seeded per call: the global torch RNG is neither read nor reseeded
        gen = torch.Generator(device=self.device).manual_seed(int(seed)) if temperature > 0 else None
        for b in length_sorted_batches([len(s) for s in seqs], self.batch_size):
            self.calls += 1
            toks, lps = self._decode([seqs[i] for i in b], max_new_tokens, temperature, top_p, gen)
            for j, i in enumerate(b):
                ids: list[int] = []
                lp: list[float] = []
                for t in range(toks.shape[1]):
                    tok = int(toks[j, t])
                    if tok in self.eos_ids:
                        break
                    ids.append(tok)
                    lp.append(float(lps[j, t]))
                out[i] = Generation(self.tokenizer.decode(ids, skip_special_tokens=True), ids, lp)
        return [g for g in out if g is not None]

    def _decode(
        self,
        seqs: list[list[int]],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        gen: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy (``temperature == 0``) or temperature / nucleus sampling with a KV cache, left-padded batch.

        Returns ``(tokens, logprobs)``, each ``(batch, steps)`` on CPU; ``logprobs`` are those of the chosen tokens
        under the raw (untempered) logits. Rows stop at an end-of-turn token (the rest is padding).
        """
        ids, mask, pos = pad_left(seqs, self.pad_id)
        cache = self._new_cache()
        h = self._forward_hidden(ids, mask, pos, cache=cache, count=False).last_hidden_state
        logits = self._lm_head(h[:, -1])
        mask = mask.to(self.device)
        nxt_pos = (pos[:, -1] + 1).to(self.device)
        eos = torch.tensor(self.eos_ids or [-1], device=self.device)
        done = torch.zeros(len(seqs), dtype=torch.bool, device=self.device)
        steps: list[torch.Tensor] = []
        lps: list[torch.Tensor] = []
        for t in range(max_new_tokens):
            logp = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                probs = _nucleus(torch.softmax(logits / temperature, dim=-1), top_p)
                tok = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            else:
                tok = logits.argmax(dim=-1)
            tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
            steps.append(tok)
            lps.append(logp.gather(1, tok.unsqueeze(1)).squeeze(1))
            done |= torch.isin(tok, eos)
            if bool(done.all()) or t == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones((len(seqs), 1), dtype=mask.dtype, device=self.device)], dim=1)
            h = self._forward_hidden(tok.unsqueeze(1), mask, nxt_pos.unsqueeze(1), cache=cache, count=False)
            nxt_pos = nxt_pos + 1
            logits = self._lm_head(h.last_hidden_state[:, -1])
        if not steps:
            return torch.zeros((len(seqs), 0), dtype=torch.long), torch.zeros((len(seqs), 0))
        return torch.stack(steps, dim=1).cpu(), torch.stack(lps, dim=1).float().cpu()


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches ``top_p`` (always at least one)."""
    if top_p >= 1.0:
        return probs
    sorted_p, idx = torch.sort(probs, dim=-1, descending=True)
    keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < top_p
    keep[..., 0] = True
    kept = torch.zeros_like(probs).scatter(-1, idx, sorted_p * keep)
    return kept / kept.sum(dim=-1, keepdim=True)


_SHARED: InstanceCache[CausalLM] = InstanceCache(CausalLM)


def get_causal_lm(model: str, **kw: Any) -> CausalLM:
    """A :class:`CausalLM` shared by every caller with the same ``model`` and keyword arguments."""
    return _SHARED.get(model, **kw)


def clear_causal_lm_cache() -> None:
    """Forget shared models (frees memory once no reranker holds them)."""
    _SHARED.clear()
