"""Parsers for generative rerankers' outputs: pure functions, no model, every repair reported.

* :func:`parse_permutation` -- RankGPT / ReasonRank ranked lists ``[3] > [1] > [2]``
  (Sun et al., arXiv 2304.09542; Liu et al., arXiv 2508.07050).
* :func:`extract_answer` -- the ``<think>...</think> <answer>...</answer>`` protocol of ReasonRank and Rank-R1.
* :func:`parse_choice` -- Rank-R1's single label ``[j]`` (Zhuang et al., arXiv 2503.06034).
* :func:`parse_group_scores` -- GroupRank's JSON ``{"[1]": 7, ...}`` 0-10 scores with its repair rules
  (arXiv 2511.11653).

Each returns what it could read plus the notes a reranker records as ``Outcome.fallbacks``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

# The think/answer pattern shared by ReasonRank (listwise_prompt_r1.toml) and Rank-R1
# (prompt_setwise-R1.toml); both apply it to the lower-cased output with DOTALL.
THINK_ANSWER = r"<think>.*?</think>\s*<answer>(.*?)</answer>"


@dataclass(slots=True)
class ParsedPermutation:
    """A full permutation of ``range(n)`` read from a model's ranked list.

    ``order`` always is a permutation (0-based). ``n_read`` ids came from the text itself;
    the counters say what was repaired.
    """

    order: list[int]
    n_read: int
    duplicates: int = 0
    out_of_range: int = 0
    missing: int = 0

    @property
    def failed(self) -> bool:
        """No usable id at all: the order is the input order."""
        return self.n_read == 0

    def notes(self) -> list[str]:
        if self.failed:
            return ["no valid id in output, kept input order"]
        out = []
        if self.duplicates:
            out.append(f"{self.duplicates} duplicate id(s) dropped")
        if self.out_of_range:
            out.append(f"{self.out_of_range} out-of-range id(s) dropped")
        if self.missing:
            out.append(f"{self.missing} missing id(s) appended in input order")
        return out


def parse_permutation(text: str, n: int) -> ParsedPermutation:
    """Read a ranking of ``n`` 1-based identifiers from free text (RankGPT's ``receive_permutation`` rules).

    Every maximal run of digits is an identifier (so ``[3] > [1]``, ``3, 1`` and ``(3) 1`` all read the
    same). Then: convert to 0-based, keep the first occurrence of each id, drop ids outside ``1..n``,
    and append the ids never mentioned in their input order.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seen: set[int] = set()
    read: list[int] = []
    dup = oor = 0
    for tok in re.findall(r"\d+", text or ""):
        i = int(tok) - 1
        if not 0 <= i < n:
            oor += 1
        elif i in seen:
            dup += 1
        else:
            seen.add(i)
            read.append(i)
    missing = [i for i in range(n) if i not in seen]
    return ParsedPermutation(read + missing, n_read=len(read), duplicates=dup, out_of_range=oor, missing=len(missing))


def extract_answer(text: str, pattern: str = THINK_ANSWER) -> tuple[str | None, str]:
    """Body of the ``<answer>`` of a think/answer output, and how it was found.

    Returns ``(body, how)``: ``how`` is ``"tags"`` (the full ``<think>..</think> <answer>..</answer>``
    pattern matched, applied to the lower-cased text as the official code does), ``"after-answer"``
    (only an opening ``<answer>`` exists, e.g. a truncated generation: the text after the last one),
    or ``"none"`` (no answer tag; body is ``None``).
    """
    low = (text or "").lower()
    m = re.search(pattern, low, re.DOTALL)
    if m:
        return m.group(1).strip(), "tags"
    if "<answer>" in low:
        body = low.rsplit("<answer>", 1)[1]
        return body.split("</answer>", 1)[0].strip(), "after-answer"
    return None, "none"


def parse_choice(text: str, n: int, pattern: str = THINK_ANSWER) -> int | None:
    """Rank-R1's answer: the 0-based index ``j-1`` when the answer body is exactly ``[j]``, 1 <= j <= n.

    Follows the official rule: the full think/answer pattern must match the lower-cased output and the
    stripped answer must equal one of the labels ``[1]`` .. ``[n]``; anything else is ``None``
    (the caller then keeps the parent, i.e. no swap).
    """
    m = re.search(pattern, (text or "").lower(), re.DOTALL)
    if not m:
        return None
    ans = m.group(1).strip()
    hit = re.fullmatch(r"\[(\d+)\]", ans)
    if not hit:
        return None
    j = int(hit.group(1))
    return j - 1 if 1 <= j <= n else None


@dataclass(slots=True)
class GroupScores:
    """GroupRank scores of one group: 0-based position -> score in [0, 1] (the 0-10 integer / 10)."""

    scores: dict[int, float]
    failed: bool
    notes: list[str] = field(default_factory=list)


_JSON_BLOCK = re.compile(r"```json\s*([\s\S]+?)\s*```")
_BRACES = re.compile(r"\{[\s\S]*?\}")


def _json_candidate(body: str) -> str | None:
    blocks = _JSON_BLOCK.findall(body)
    if blocks:
        return blocks[-1].strip()
    objs = _BRACES.findall(body)
    if objs:
        return objs[-1]
    if "{" in body:  # unterminated object at the end (truncated output): take it, the brace repair closes it
        tail = body[body.rindex("{") :]
        return tail.split("```", 1)[0]
    return None


def parse_group_scores(text: str, n: int) -> GroupScores:
    """Read GroupRank's JSON answer for a group of ``n`` documents (rules of ``rerank_groupwise.py``).

    1. Take the ``<answer>...</answer>`` body when present, else the whole text.
    2. Take the last fenced ```` ```json ```` block, else the last ``{...}``; as an extension, an unterminated
       trailing ``{...`` (truncated generation) is also taken.
    3. Repairs of the official code: ``"[7]]"`` -> ``"[7]"``; one ``}`` appended when ``{`` outnumber ``}``;
       whitespace collapsed.
    4. ``json.loads``; keys ``"[i]"`` (or ``"i"``) map to position ``i-1``; values divided by 10.

    Entry-level rules (recorded, the rest of the group is kept; the official code would zero the group):
    keys that are not ``1..n`` are dropped, non-numeric values are dropped, values outside 0..10 are
    clipped. A document with no valid entry is simply absent from ``scores``. If nothing parses, the
    result is ``failed`` and the caller gives every document of the group 0 (the official fallback).
    """
    raw = text or ""
    m = re.search(r"<answer>(.*?)</answer>", raw, re.DOTALL)
    body = m.group(1).strip() if m else raw
    cand = _json_candidate(body)
    if cand is None:
        return GroupScores({}, True, ["no JSON object in output"])
    notes: list[str] = []
    s = cand.strip()
    fixed = re.sub(r"(\[\d+\])\]", r"\1", s)
    if fixed != s:
        notes.append("repaired doubled ']' in key")
    s = fixed
    if s.count("{") > s.count("}"):
        s += "}"
        notes.append("appended missing '}'")
    s = re.sub(r"\s+", " ", s).strip()
    try:
        obj = json.loads(s)
    except (json.JSONDecodeError, ValueError):
        return GroupScores({}, True, [*notes, "invalid JSON"])
    if not isinstance(obj, dict):
        return GroupScores({}, True, [*notes, "JSON is not an object"])
    scores: dict[int, float] = {}
    bad_key = bad_val = clipped = dup = 0
    for k, v in obj.items():
        key = str(k).strip().strip("[]").strip()
        if not key.isdigit() or not 1 <= int(key) <= n:
            bad_key += 1
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            bad_val += 1
            continue
        try:
            val = float(v)
        except ValueError:
            bad_val += 1
            continue
        if not math.isfinite(val):
            bad_val += 1
            continue
        if val < 0 or val > 10:
            clipped += 1
            val = min(max(val, 0.0), 10.0)
        pos = int(key) - 1
        if pos in scores:
            dup += 1
        scores[pos] = val / 10.0
    if bad_key:
        notes.append(f"{bad_key} key(s) outside [1]..[{n}] dropped")
    if bad_val:
        notes.append(f"{bad_val} non-numeric score(s) dropped")
    if clipped:
        notes.append(f"{clipped} score(s) clipped to 0..10")
    if dup:
        notes.append(f"{dup} repeated key(s): last value kept")
    if not scores:
        return GroupScores({}, True, [*notes, "no valid score in JSON"])
    missing = n - len(scores)
    if missing:
        notes.append(f"{missing} document(s) without a score")
    return GroupScores(scores, False, notes)
