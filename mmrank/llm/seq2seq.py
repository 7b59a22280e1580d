"""Seq2seq backend (monoT5-style): first decoder step logits for batched encoder inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmrank.llm.batching import length_sorted_batches
from mmrank.llm.cut import cut_for_tokens
from mmrank.llm.loading import load_model, load_tokenizer, resolve_device, resolve_dtype
from mmrank.llm.tokens import single_token_id


class Seq2SeqLM:
    """``AutoModelForSeq2SeqLM`` returning the logits of the first decoded token."""

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForSeq2SeqLM

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.model = load_model(
            AutoModelForSeq2SeqLM, model, device=self.device, dtype=self.dtype, trust_remote_code=trust_remote_code
        )
        self.max_length = max_length
        self.batch_size = batch_size
        self.calls = 0
        start = self.model.config.decoder_start_token_id
        self.decoder_start = int(start if start is not None else self.model.config.pad_token_id)

    def token_id(self, text: str) -> int:
        return single_token_id(self.tokenizer, text)

    @torch.inference_mode()
    def first_step_logits(self, inputs: Sequence[str]) -> torch.Tensor:
        """``(n, vocab)`` float32 logits of the first decoder step for each encoder input."""
        cut = cut_for_tokens(inputs, self.max_length)  # never tokenise a huge text in full
        enc_all = [self.tokenizer.encode(t, truncation=True, max_length=self.max_length) for t in cut]
        rows: dict[int, torch.Tensor] = {}
        for b in length_sorted_batches([len(e) for e in enc_all], self.batch_size):
            enc = self.tokenizer.pad({"input_ids": [enc_all[i] for i in b]}, return_tensors="pt").to(self.device)
            dec = torch.full((len(b), 1), self.decoder_start, dtype=torch.long, device=self.device)
            self.calls += 1
            logits = self.model(**enc, decoder_input_ids=dec).logits[:, 0].float().cpu()
            for j, i in enumerate(b):
                rows[i] = logits[j]
        return torch.stack([rows[i] for i in range(len(inputs))]) if rows else torch.zeros((0, 0))
