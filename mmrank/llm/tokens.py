"""Single-token label ids ("yes", "1", "true"), the error raised when a label is not one token, and stop tokens."""

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


END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>")


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """Ids that end a generation: the model's ``generation_config.eos_token_id``, the tokenizer's EOS and the
    special end-of-turn tokens of common chat templates present in the vocabulary."""
    ids: set[int] = set()
    gc = getattr(model, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
    if e is not None:
        ids |= set(e) if isinstance(e, list | tuple) else {int(e)}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids |= {int(vocab[t]) for t in END_OF_TURN if t in vocab and t in tokenizer.all_special_tokens}
    return sorted(ids)
