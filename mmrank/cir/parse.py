"""Robust, linear-time parsing of the VLM's grid ranking (EBR).

The answer should read ``Ranked list: [a, b, c, ...]`` (grid marks, best first). :func:`parse_grid_ranking`
reads the indices after the ``output_regex`` anchor (else, recorded, from the whole answer): inside the first
``[...]`` when the list is bracketed (``[3, 1, 2]``), or every number up to the end when it is chained
(``[3] > [1] > [2]``). Marks are mapped to 0-based candidate positions; duplicates and marks outside the grid are
dropped, candidates the answer left out are appended in their first-stage (SQAF) order, and each repair is
recorded as a fallback. No number at all keeps the first-stage order. One pass over the text, one over the
candidates.
"""

from __future__ import annotations

import re

_INT = re.compile(r"\d+")


def _span(text: str, anchor: re.Pattern[str] | None, fallbacks: list[str]) -> str:
    span = text
    if anchor is not None:
        m = anchor.search(text)
        if m:
            span = m.group(1) if m.groups() else text[m.end() :]
        else:
            fallbacks.append("ebr: no 'Ranked list' in the answer; read indices from the whole answer")
    stripped = span.lstrip()
    if stripped.startswith("["):
        j = stripped.find("]")
        if j > 0:
            inner = stripped[1:j]
            if "," in inner or not stripped[j + 1 :].lstrip().startswith(">"):
                return inner
    return span


def parse_grid_ranking(
    text: str, n: int, *, first_index: int = 1, anchor: re.Pattern[str] | None = None
) -> tuple[list[int], list[str]]:
    """``(order, fallbacks)``: a permutation of ``range(n)`` (best first) read from the VLM answer ``text``."""
    fallbacks: list[str] = []
    if n <= 0:
        return [], fallbacks
    span = _span(text or "", anchor, fallbacks)
    seen = bytearray(n)
    order: list[int] = []
    dups, outside = 0, []
    found = False
    for m in _INT.finditer(span):
        found = True
        tok = m.group(0)
        v = int(tok) - first_index if len(tok) <= 9 else -1
        if not 0 <= v < n:
            outside.append(tok)
        elif seen[v]:
            dups += 1
        else:
            seen[v] = 1
            order.append(v)
    if not found or not order:
        note = "no parsable ranking" if not found else "no index inside the grid"
        return list(range(n)), [*fallbacks, f"ebr: {note}; kept the first-stage order"]
    if dups:
        fallbacks.append(f"ebr: dropped {dups} duplicate index(es)")
    if outside:
        shown = ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
        fallbacks.append(f"ebr: dropped {len(outside)} index(es) outside {first_index}..{first_index + n - 1}: {shown}")
    missing = [i for i in range(n) if not seen[i]]
    if missing:
        fallbacks.append(f"ebr: appended {len(missing)} unranked candidate(s) in first-stage order")
    return order + missing, fallbacks
