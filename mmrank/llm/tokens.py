"""Single-token label ids ("yes", "1", "true") and the error raised when a label is not one token."""

from __future__ import annotations

from typing import Any

from mmrank.errors import MmrankError


class LabelTokenError(MmrankError, ValueError):
    """A label string that must be one token is split into several by the tokenizer."""


def single_token_id(tokenizer: Any, text: str) -> int:
    """Id of ``text`` when the tokenizer encodes it as exactly one token (no special tokens added).

    Falls back to the vocabulary entry spelled exactly ``text`` (e.g. ``"▁true"`` in sentencepiece vocabularies).
    """
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1:
        return int(ids[0])
    vocab = tokenizer.get_vocab()
    if text in vocab:
        return int(vocab[text])
    pieces = tokenizer.convert_ids_to_tokens(ids)
    raise LabelTokenError(f"label {text!r} is not a single token for this tokenizer: {pieces}")
