"""Issue 12 item 8: missing or broken models fail in one typed line; text is cut by characters before tokenising
(a 10 MB candidate is never tokenised in full) without changing what the model sees."""

from __future__ import annotations

import numpy as np
import pytest

from mmrank.errors import ModelLoadError, ModelNotFoundError
from mmrank.llm.cut import char_limit, cut_for_tokens
from mmrank.types import Item, Query

HUGE = ("retrieval " * 1_100_000)[:10_000_000]  # 10 MB of ordinary words


@pytest.mark.parametrize("model", ["/no/such/folder", "nobody/absent-model-xyz", "./relative/missing"])
def test_missing_model_names_model_place_and_remedy(model):
    import torch
    from transformers import AutoModelForSequenceClassification

    from mmrank.llm.loading import load_model, load_tokenizer

    for load in (
        lambda: load_tokenizer(model),
        lambda: load_model(AutoModelForSequenceClassification, model, device=torch.device("cpu"), dtype=torch.float32),
    ):
        with pytest.raises(ModelNotFoundError) as e:
            load()
        msg = str(e.value)
        assert repr(model) in msg and "not found" in msg and "local path" in msg and "\n" not in msg


def test_broken_local_model_is_a_load_error_naming_the_path(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": "many"}')
    from mmrank.llm.seq_cls import SeqClsModel

    with pytest.raises(ModelLoadError, match=str(tmp_path)) as e:
        SeqClsModel(str(tmp_path), device="cpu")
    assert not isinstance(e.value, ModelNotFoundError)


def test_missing_clip_and_text_encoders():
    from mmrank.encoders.clip import HFCLIPEncoder, OpenCLIPEncoder
    from mmrank.encoders.text import HFTextEncoder, SentenceTransformerEncoder

    for make in (
        lambda: SentenceTransformerEncoder("/no/such/st-model", device="cpu"),
        lambda: HFTextEncoder("/no/such/hf-model", device="cpu"),
        lambda: HFCLIPEncoder("/no/such/clip", device="cpu"),
        lambda: OpenCLIPEncoder("NoSuchArch-XYZ", device="cpu"),
        lambda: OpenCLIPEncoder("ViT-B-32", "/no/such/checkpoint.pt", device="cpu"),
    ):
        with pytest.raises(ModelNotFoundError, match="not found"):
            make()


def test_cut_keeps_every_token_a_model_sees():
    assert char_limit(256) == 256 * 32 and char_limit(None) is None
    assert cut_for_tokens(["short", HUGE], 512) == ["short", HUGE[: 512 * 32]]


def test_sentence_transformer_never_tokenises_a_huge_text_in_full(minilm):
    seen: list[int] = []
    hook = "preprocess" if hasattr(minilm.model, "preprocess") else "tokenize"  # sentence-transformers 6 / 5
    real = getattr(minilm.model, hook)

    def recording(*a, **k):  # instrumentation around the real tokenizer step
        texts = k.get("inputs", a[0] if a else [])
        seen.extend(len(t) for t in texts if isinstance(t, str))
        return real(*a, **k)

    setattr(minilm.model, hook, recording)
    try:
        v = minilm.encode_items([Item("big", text=HUGE), Item("small", text="retrieval retrieval")])
    finally:
        setattr(minilm.model, hook, real)
    assert max(seen) <= minilm.model.max_seq_length * 32
    # what the model sees is unchanged: same vector as the text cut far beyond its token window
    ref = minilm.encode_items([Item("ref", text=HUGE[:20_000])])
    np.testing.assert_allclose(v[0], ref[0], atol=1e-5)


def _spy_class(base: type, seen: list[int]) -> type:
    """The real tokenizer class, recording the length of every text it is asked to tokenise."""

    class Spy(base):  # type: ignore[misc, valid-type]
        def __call__(self, text, *a, **k):
            for t in [text, *(a[:1])]:
                seen.extend(len(x) for x in (t if isinstance(t, list) else [t]))
            return super().__call__(text, *a, **k)

    return Spy


def test_hf_text_encoder_and_cross_encoder_cut_before_tokenising(tmp_path):
    from mmrank.encoders.text import HFTextEncoder
    from mmrank.llm.seq_cls import SeqClsModel
    from tests.tiny_text import save_tiny_cross_encoder

    path = save_tiny_cross_encoder(tmp_path / "ce")
    enc = HFTextEncoder(str(path), device="cpu", max_length=64)
    ce = SeqClsModel(str(path), device="cpu", max_length=64)
    for obj in (enc, ce):
        seen: list[int] = []
        obj.tokenizer.__class__ = _spy_class(type(obj.tokenizer), seen)
        if obj is enc:
            v = enc.encode_items([Item("big", text=HUGE)])
            assert np.isfinite(v).all()
        else:
            s = ce.score(["what is retrieval"], [HUGE])
            assert np.isfinite(s).all()
        assert seen and max(seen) <= 64 * 32
    q = enc.encode_queries([Query("q", text="retrieval")])
    assert q.shape == (1, enc.dim)
