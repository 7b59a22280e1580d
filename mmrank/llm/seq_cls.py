"""Sequence-classification backend (cross-encoders): batched, length-sorted scoring of text pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmrank.llm.batching import length_sorted_batches
from mmrank.llm.cut import cut_for_tokens
from mmrank.llm.loading import load_model, load_tokenizer, resolve_device, resolve_dtype


class SeqClsModel:
    """``AutoModelForSequenceClassification`` scoring ``(query, document)`` pairs.

    One output logit: that logit is the score. Two or more: ``log_softmax(logits)[:, positive_label]``.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
        batch_size: int = 32,
        positive_label: int = 1,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForSequenceClassification

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.model = load_model(
            AutoModelForSequenceClassification,
            model,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=trust_remote_code,
        )
        self.max_length = max_length
        self.batch_size = batch_size
        self.positive_label = positive_label
        self.calls = 0

    @torch.inference_mode()
    def score(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        if len(queries) != len(documents):
            raise ValueError("one document per query is needed")
        if not queries:
            return np.zeros(0)
        # tokenise everything once (fast tokenizers batch this in Rust), then pad per length-sorted batch
        q_cut = cut_for_tokens(queries, self.max_length)  # never tokenise a huge text in full
        d_cut = cut_for_tokens(documents, self.max_length)
        enc_all = self.tokenizer(q_cut, d_cut, truncation="longest_first", max_length=self.max_length)
        keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc_all]
        lengths = [len(x) for x in enc_all["input_ids"]]
        out = np.zeros(len(queries))
        for b in length_sorted_batches(lengths, self.batch_size):
            feats = [{k: enc_all[k][i] for k in keys} for i in b]
            enc = self.tokenizer.pad(feats, return_tensors="pt").to(self.device)
            self.calls += 1
            logits = self.model(**enc).logits.float()
            if logits.shape[-1] == 1:
                s = logits[:, 0]
            else:
                s = torch.log_softmax(logits, dim=-1)[:, self.positive_label]
            out[b] = s.cpu().double().numpy()
        return out
