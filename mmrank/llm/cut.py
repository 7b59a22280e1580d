"""Cut text by characters *before* tokenising.

Tokenisers truncate only after tokenising the whole input, so a 10 MB document costs seconds and gigabytes just to
keep its first 512 tokens. :func:`cut_for_tokens` keeps the first ``max_tokens * chars_per_token`` characters; with
the default 32 characters per token (natural text runs at 3-6 characters per token, and word-piece tokenisers
split words longer than ~100 characters into [UNK] pieces) the tokens a model sees are unchanged, except after
long runs of characters that produce no tokens at all (e.g. megabytes of whitespace), which are cut too.
"""

from __future__ import annotations

from collections.abc import Sequence

CHARS_PER_TOKEN = 32


def char_limit(max_tokens: int | None, chars_per_token: int = CHARS_PER_TOKEN) -> int | None:
    """The character bound for ``max_tokens`` tokens (``None``: no bound)."""
    if max_tokens is None or max_tokens <= 0:
        return None
    return int(max_tokens) * chars_per_token


def cut_for_tokens(texts: Sequence[str], max_tokens: int | None, chars_per_token: int = CHARS_PER_TOKEN) -> list[str]:
    """``texts`` with each one cut to :func:`char_limit` characters (shorter texts are returned as they are)."""
    limit = char_limit(max_tokens, chars_per_token)
    if limit is None:
        return list(texts)
    return [t if len(t) <= limit else t[:limit] for t in texts]
