"""HFTextEncoder loads a transformers encoder from a local path and pools as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrank.encoders.text import HFTextEncoder
from mmrank.types import Item, Query

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "fast", "red", "car"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = BertTokenizerFast(vocab=vocab)
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
    )
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model.eval(), tok


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooling_matches_manual(tiny_bert, pooling):
    path, model, tok = tiny_bert
    enc = HFTextEncoder(str(path), pooling=pooling, device="cpu", batch_size=2)
    texts = ["the cat sat on the mat", "red car", "dog ran fast on the mat"]
    got = enc.encode_items([Item(str(i), text=t) for i, t in enumerate(texts)])
    for i, t in enumerate(texts):  # one text at a time: no padding at all
        ids = tok(t, return_tensors="pt")
        with torch.no_grad():
            h = model(**ids).last_hidden_state[0]
        v = h.mean(0) if pooling == "mean" else h[0]
        v = (v / v.norm()).numpy()
        np.testing.assert_allclose(got[i], v, atol=1e-5)
    q = enc.encode_queries([Query("q", text="red car")])
    np.testing.assert_allclose(q[0], got[1], atol=1e-6)
    assert enc.dim == 16
