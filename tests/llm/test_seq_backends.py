"""Sequence-classification and seq2seq backends against naive per-input forwards (tiny models on disk)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.seq2seq import Seq2SeqLM
from mmrank.llm.seq_cls import SeqClsModel
from tests.tiny_text import save_tiny_cross_encoder, save_tiny_t5

torch.set_num_threads(1)

Q = ["what is the cat", "capital of france", "dogs"]
D = ["the cat sat on the mat", "paris is the capital of france and more words here", "dogs bark at night"]


def test_seq_cls_batched_equals_per_pair(tmp_path):
    m = SeqClsModel(str(save_tiny_cross_encoder(tmp_path / "ce")), device="cpu", batch_size=2)
    got = m.score(Q, D)
    assert m.calls == 2
    for q, d, g in zip(Q, D, got, strict=True):
        enc = m.tokenizer(q, d, return_tensors="pt")
        with torch.no_grad():
            ref = float(m.model(**enc).logits[0, 0])
        assert g == np.float64(ref) or abs(g - ref) < 1e-5


def test_seq2seq_first_step_equals_per_input(tmp_path):
    m = Seq2SeqLM(str(save_tiny_t5(tmp_path / "t5")), device="cpu", batch_size=2)
    texts = [f"Query: {q} Document: {d} Relevant:" for q, d in zip(Q, D, strict=True)]
    got = m.first_step_logits(texts)
    for t, g in zip(texts, got, strict=True):
        enc = m.tokenizer(t, return_tensors="pt")
        with torch.no_grad():
            ref = m.model(**enc, decoder_input_ids=torch.tensor([[m.decoder_start]])).logits[0, 0]
        torch.testing.assert_close(g, ref, atol=1e-5, rtol=1e-5)
    assert m.token_id("true") != m.token_id("false")
