"""Tiny ColQwen2 / ColPali retrieval models built from config (random weights), saved with ``save_pretrained``.

ColQwen2 wraps the tiny Qwen2-VL of :mod:`tests.tiny_vlm` (images 28x28 .. 56x56 px, 1 to 4 image tokens); ColPali
wraps a tiny PaliGemma (Gemma text, SigLIP vision, 28x28 px images = 4 image tokens) with a BPE tokenizer trained in
memory. Both produce ``embedding_dim``-d token vectors and load through ``from_pretrained(folder)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.tiny_vlm import MAX_PIXELS, MIN_PIXELS, VLM_CORPUS, _text_config, _token_ids, qwen_vl_tokenizer


def save_tiny_colqwen2(directory: str | Path, *, seed: int = 0, embedding_dim: int = 16) -> Path:
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
    )

    tok = qwen_vl_tokenizer()
    vlm = Qwen2VLConfig(
        text_config=_text_config(tok, 32, 2),
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 32, "mlp_ratio": 2, "num_heads": 2},
        **_token_ids(tok),
    )
    torch.manual_seed(seed)
    model = ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm, embedding_dim=embedding_dim)).eval()
    image = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    proc = ColQwen2Processor(image_processor=image, tokenizer=tok)
    path = Path(directory)
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path


def save_tiny_colpali(directory: str | Path, *, seed: int = 0, embedding_dim: int = 16) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        PaliGemmaConfig,
        PreTrainedTokenizerFast,
        SiglipImageProcessor,
    )

    special = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    t.train_from_iterator(VLM_CORPUS * 3, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=t,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image = SiglipImageProcessor(size={"height": 28, "width": 28})
    image.image_seq_length = 4  # (28 / 14) ** 2 patches
    proc = ColPaliProcessor(image_processor=image, tokenizer=tok)
    vlm = PaliGemmaConfig(
        text_config={
            "model_type": "gemma",
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 8,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        projection_dim=32,
        hidden_size=32,
    )
    torch.manual_seed(seed)
    model = ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=embedding_dim)).eval()
    path = Path(directory)
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path
