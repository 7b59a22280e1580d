"""Tiny Qwen2-VL and Qwen2.5-VL models built from config (random weights) for the VLM backend and its rerankers.

Each builder saves model, processor (image processor with small min/max pixels, video processor, tokenizer) and
the Qwen-VL chat template with ``save_pretrained`` and returns the folder, so tests go through the real
``from_pretrained`` loading code: ``VLM(str(save_tiny_qwen2_vl(tmp_path)))``. A forward pass takes milliseconds.

Images are resized to 28x28 .. 56x56 pixels, i.e. 1 to 4 image tokens after the 2x2 patch merge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.tiny_text import CORPUS, QWEN_SPECIAL

# The Qwen2-VL / Qwen2.5-VL chat template (string or list content; image / video parts become
# <|vision_start|><|image_pad|><|vision_end|>; default system turn; optional "Picture i: " labels).
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

VLM_CORPUS = [
    *CORPUS,
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.",
    "Please rank the following images according to their relevance to the question. Image 1: Image 2: Image 3:",
    "<think> reasoning process here </think><answer>[1, 2, 3]</answer> The question is: There are images, id from",
    "<Instruct>: <Query>: <Document>: a red square, a blue circle, a green triangle. Picture Video",
]

MIN_PIXELS = 28 * 28
MAX_PIXELS = 56 * 56


def qwen_vl_tokenizer() -> Any:
    """Byte-level BPE with Qwen's special tokens and the Qwen-VL chat template (``yes`` / ``no`` one token each)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(VLM_CORPUS * 3, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL[1:],
        chat_template=QWEN_VL_CHAT_TEMPLATE,
    )


def _text_config(tok: Any, hidden: int, layers: int) -> dict[str, Any]:
    heads = 4
    head_dim = hidden // heads
    # mrope_section splits head_dim / 2 rotary frequencies over (temporal, height, width)
    half = head_dim // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    return {
        "vocab_size": len(tok),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": section},
        "bos_token_id": None,
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tok.pad_token_id,
    }


def _token_ids(tok: Any) -> dict[str, int]:
    ids = tok.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def _save(path: Path, model: Any, processor: Any, tok: Any) -> Path:
    from transformers import GenerationConfig

    path.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tok.pad_token_id,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _processor(cls: Any, tok: Any, min_pixels: int, max_pixels: int) -> Any:
    from transformers import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    image = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return cls(image_processor=image, tokenizer=tok, video_processor=video, chat_template=QWEN_VL_CHAT_TEMPLATE)


def save_tiny_qwen2_vl(
    directory: str | Path,
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> Path:
    """A tiny random ``Qwen2VLForConditionalGeneration`` + ``Qwen2VLProcessor`` saved under ``directory``."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    tok = qwen_vl_tokenizer()
    cfg = Qwen2VLConfig(
        text_config=_text_config(tok, hidden, layers),
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": hidden,
            "mlp_ratio": 2,
            "num_heads": 2,
        },
        **_token_ids(tok),
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    return _save(Path(directory), model, _processor(Qwen2VLProcessor, tok, min_pixels, max_pixels), tok)


def save_tiny_qwen2_5_vl(
    directory: str | Path,
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> Path:
    """A tiny random ``Qwen2_5_VLForConditionalGeneration`` + ``Qwen2_5_VLProcessor`` saved under ``directory``."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    tok = qwen_vl_tokenizer()
    cfg = Qwen2_5_VLConfig(
        text_config=_text_config(tok, hidden, layers),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        **_token_ids(tok),
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    return _save(Path(directory), model, _processor(Qwen2_5_VLProcessor, tok, min_pixels, max_pixels), tok)


def colour_image(colour: str | tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Any:
    """A plain PIL image of one colour (test fixture)."""
    from PIL import Image

    return Image.new("RGB", size, colour)
