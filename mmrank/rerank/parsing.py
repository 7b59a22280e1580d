"""Parsers for generative rerankers' outputs: pure functions, no model, every repair reported.

* :func:`parse_permutation` -- RankGPT / ReasonRank ranked lists ``[3] > [1] > [2]``
  (Sun et al., arXiv 2304.09542; Liu et al., arXiv 2508.07050), with rank_llm's reading rules.
* :func:`extract_answer` -- the ``<think>...</think> <answer>...</answer>`` protocol of ReasonRank and Rank-R1.
* :func:`parse_choice` -- Rank-R1's single label ``[j]`` (Zhuang et al., arXiv 2503.06034).
* :func:`parse_group_scores` -- GroupRank's JSON ``{"[1]": 7, ...}`` 0-10 scores with its repair rules
  (arXiv 2511.11653).

Contract, for every parser: any string (or ``None``) gives a result -- never an exception -- in time linear in its
length, and whatever was repaired or ignored comes back as notes that rerankers record as ``Outcome.fallbacks``.

The output patterns are data in the YAML prompts (``output_regex`` and ``output_patterns``), copied from the official
code. The official regular expressions backtrack badly on adversarial text (``<think>.*?</think>\\s*<answer>(.*?)
</answer>`` is cubic: 24 KB of repeated tags took 87 s), so the packaged patterns are executed by equivalent
``str.find`` scans here (same match, same group, checked against :mod:`re` by property tests). A user-supplied
pattern that is not one of them runs through :mod:`re` as given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from mmrank.prompts import load_prompt

# ------------------------------------------------------------------ digits

# rank_llm's clean_ranking_response reads these look-alikes as the digits they show: superscripts, subscripts,
# circled and negative-circled 1-9, fullwidth 0-9 and the "digit full stop" symbols U+1F100..U+1F109.
_LOOKALIKES = {
    **{c: str(i) for i, c in enumerate("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")},
    **{chr(0x2080 + i): str(i) for i in range(10)},
    **{chr(0x2460 + i): str(i + 1) for i in range(9)},
    **{chr(0x2776 + i): str(i + 1) for i in range(9)},
    **{chr(0xFF10 + i): str(i) for i in range(10)},
    **{chr(0x1F100 + i): str(i) for i in range(10)},
}
_DIGIT_MAP = str.maketrans(_LOOKALIKES)


def digit_runs(text: str) -> list[str]:
    """Maximal runs of decimal digits in ``text`` after rank_llm's look-alike translation (``"²"`` reads ``"2"``).

    A digit is a Unicode decimal digit (``str.isdecimal``: ASCII ``0-9`` and the decimal digits of other scripts,
    e.g. ``"٣"``); any other character -- including digit-like symbols outside the translation table -- separates
    runs. rank_llm would raise on those (``int()`` of a non-decimal ``isdigit`` character); here they are spaces.
    """
    t = text.translate(_DIGIT_MAP)
    out: list[str] = []
    start = -1
    for i, c in enumerate(t):
        if c.isdecimal():
            if start < 0:
                start = i
        elif start >= 0:
            out.append(t[start:i])
            start = -1
    if start >= 0:
        out.append(t[start:])
    return out


def bounded_int(digits: str, hi: int) -> int | None:
    """``int(digits)`` when it is at most ``hi`` (leading zeros allowed: ``"007"`` is 7), else ``None``.

    Never converts more digits than ``hi`` has, so a 10,000-digit id costs nothing and cannot hit Python's
    int-string limit.
    """
    core = digits.lstrip("0") or "0"
    if len(core) > len(str(max(hi, 0))):
        return None
    v = int(core)
    return v if v <= hi else None


def after_last_think(text: str) -> str:
    """The text after the last ``</think>`` (rank_llm reads a reasoning model's answer there), else ``text``."""
    return text.rsplit("</think>", 1)[-1].strip() if "</think>" in text else text


# ------------------------------------------------------------------ linear equivalents of the packaged patterns


def _think_answer(text: str) -> str | None:
    """Group 1 of ``re.search(r"<think>.*?</think>\\s*<answer>(.*?)</answer>", text, re.DOTALL)``, linearly.

    The leftmost ``<think>`` is the only start worth trying (any later start has a subset of its continuations);
    the lazy ``.*?`` stops at the first ``</think>`` followed by whitespace and ``<answer>``; the answer runs to the
    first ``</answer>`` after it (if there is none, no later candidate has one either).
    """
    s = text.find("<think>")
    if s < 0:
        return None
    p = text.find("</think>", s + 7)
    while p >= 0:
        q = p + 8
        while q < len(text) and text[q].isspace():
            q += 1
        if text.startswith("<answer>", q):
            e = text.find("</answer>", q + 8)
            return None if e < 0 else text[q + 8 : e]
        p = text.find("</think>", p + 1)
    return None


def _answer_tag(text: str) -> str | None:
    """Group 1 of ``re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)``, linearly."""
    a = text.find("<answer>")
    if a < 0:
        return None
    e = text.find("</answer>", a + 8)
    return None if e < 0 else text[a + 8 : e]


def _json_blocks(text: str) -> list[str]:
    """``re.findall(r"(?:```json\\s*)([\\s\\S]+?)(?:\\s*```)", text)``, linearly.

    For a start at ``i``: the greedy ``\\s*`` ends at ``g``; the lazy group then ends where the whitespace before
    the first ```` ``` ```` at or after ``g + 1`` begins (never before ``g + 1``). When no such fence exists but one
    starts right at ``g`` after some whitespace, the regex backtracks one whitespace character into the group.
    """
    out: list[str] = []
    last_fence = text.rfind("```")
    pos = 0
    n = len(text)
    while True:
        i = text.find("```json", pos)
        if i < 0:
            return out
        g = i + 7
        while g < n and text[g].isspace():
            g += 1
        q = text.find("```", g + 1) if g + 1 <= last_fence else -1
        if q >= 0:
            e = q
            while e > g + 1 and text[e - 1].isspace():
                e -= 1
            out.append(text[g:e])
            pos = q + 3
        elif g > i + 7 and text.startswith("```", g):
            out.append(text[g - 1 : g])
            pos = g + 3
        else:
            pos = i + 1


def _json_objects(text: str) -> list[str]:
    """``re.findall(r"\\{[\\s\\S]*?\\}", text)``, linearly: each ``{`` to the first ``}`` after it."""
    out: list[str] = []
    pos = 0
    while True:
        i = text.find("{", pos)
        if i < 0:
            return out
        j = text.find("}", i + 1)
        if j < 0:
            return out
        out.append(text[i : j + 1])
        pos = j + 1


@cache
def _linear_table() -> dict[str, Callable[[str], object]]:
    """Packaged pattern (from the YAML prompts) -> its linear-time equivalent."""
    think = load_prompt("reasonrank").output_regex
    group = load_prompt("grouprank")
    pats = group.extra.get("output_patterns", {})
    table: dict[str, Callable[[str], object]] = {}
    for p, fn in (
        (think, _think_answer),
        (load_prompt("rank_r1").output_regex, _think_answer),
        (group.output_regex, _answer_tag),
        (pats.get("json_block"), _json_blocks),
        (pats.get("json_object"), _json_objects),
    ):
        if p:
            table[p] = fn
    return table


def search_group(pattern: str, text: str) -> str | None:
    """Group 1 (or the whole match) of ``re.search(pattern, text, re.DOTALL)``; linear for packaged patterns."""
    fn = _linear_table().get(pattern)
    if fn is not None:
        out = fn(text)
        assert out is None or isinstance(out, str)
        return out
    m = re.search(pattern, text, re.DOTALL)
    if not m:
        return None
    return m.group(1) if m.re.groups else m.group(0)


def find_all(pattern: str, text: str) -> list[str]:
    """``re.findall(pattern, text)``; linear for packaged patterns."""
    fn = _linear_table().get(pattern)
    if fn is not None:
        out = fn(text)
        assert isinstance(out, list)
        return out
    return [m if isinstance(m, str) else m[0] for m in re.findall(pattern, text)]


# ------------------------------------------------------------------ permutations (RankGPT / ReasonRank)


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


def parse_permutation(text: str | None, n: int) -> ParsedPermutation:
    """Read a ranking of ``n`` 1-based identifiers from free text (rank_llm's ``clean_ranking_response`` and
    RankGPT's ``receive_permutation`` rules).

    1. When the text holds ``</think>``, only what follows the last one is read (a reasoning model's answer; a year
       in the reasoning is not an id).
    2. Every maximal run of digits is an identifier (:func:`digit_runs`): ``[3] > [1]``, ``3, 1`` and ``(3) 1``
       read the same; ``[007]`` is 7 (leading zeros are ignored, as ``int`` does); ``²`` and ``３`` read as 2 and 3
       (rank_llm's look-alike table); ``-1`` is the digits ``1``.
    3. Ids are converted to 0-based; the first occurrence of each is kept; ids outside ``1..n`` (any length: a
       5,000-digit number is simply out of range) are dropped; ids never mentioned are appended in input order.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seen: set[int] = set()
    read: list[int] = []
    dup = oor = 0
    for tok in digit_runs(after_last_think(text or "")):
        v = bounded_int(tok, n)
        if v is None or v < 1:
            oor += 1
            continue
        i = v - 1
        if i in seen:
            dup += 1
        else:
            seen.add(i)
            read.append(i)
    missing = [i for i in range(n) if i not in seen]
    return ParsedPermutation(read + missing, n_read=len(read), duplicates=dup, out_of_range=oor, missing=len(missing))


# ------------------------------------------------------------------ think / answer (ReasonRank, Rank-R1)


def extract_answer(text: str | None, pattern: str | None = None) -> tuple[str | None, str]:
    """Body of the ``<answer>`` of a think/answer output, and how it was found (ReasonRank's ``_clean_response``).

    ``pattern`` is the prompt's ``output_regex`` (default: ReasonRank's). Returns ``(body, how)``:

    * ``"tags"`` -- the pattern matched the lower-cased text (as the official code applies it); ``body`` is its
      group, stripped and lower-cased;
    * ``"after-answer"`` -- no match, but ``<answer>`` occurs (case-sensitively, in the original text, e.g. a
      generation cut off before ``</answer>``): everything after the last ``<answer>``, as the official code does;
    * ``"none"`` -- neither; ``body`` is ``None``.
    """
    raw = text or ""
    body = search_group(pattern or _think_pattern(), raw.lower())
    if body is not None:
        return body.strip(), "tags"
    if "<answer>" in raw:
        return raw.rsplit("<answer>", 1)[1].strip(), "after-answer"
    return None, "none"


@cache
def _think_pattern() -> str:
    return load_prompt("reasonrank").output_regex or ""


def parse_choice(text: str | None, n: int, pattern: str | None = None) -> int | None:
    """Rank-R1's answer: the 0-based index ``j - 1`` when the answer is exactly one of the labels ``[1]`` .. ``[n]``.

    Follows the official rule: ``pattern`` (the prompt's ``output_regex``, default Rank-R1's) must match the
    lower-cased output, and the stripped answer must *equal* a label string -- so ``[3]`` counts, while ``[03]``,
    ``[ 3 ]``, ``3``, ``[３]`` and ``[3] > [1]`` do not. Anything else is ``None`` (the caller keeps the parent).
    """
    body = search_group(pattern or _rank_r1_pattern(), (text or "").lower())
    if body is None:
        return None
    ans = body.strip()
    inner = ans[1:-1]
    if len(ans) < 3 or ans[0] != "[" or ans[-1] != "]" or not (inner.isascii() and inner.isdigit()):
        return None
    if inner[0] == "0":
        return None
    j = bounded_int(inner, n)
    return j - 1 if j is not None and j >= 1 else None


@cache
def _rank_r1_pattern() -> str:
    return load_prompt("rank_r1").output_regex or ""


# ------------------------------------------------------------------ GroupRank JSON scores


@dataclass(slots=True)
class GroupScores:
    """GroupRank scores of one group: 0-based position -> score in [0, 1] (the 0-10 value / 10)."""

    scores: dict[int, float]
    failed: bool
    notes: list[str] = field(default_factory=list)


def _json_candidate(body: str, pats: dict[str, str]) -> str | None:
    blocks = find_all(pats["json_block"], body)
    if blocks:
        return blocks[-1].strip()
    objs = find_all(pats["json_object"], body)
    if objs:
        return objs[-1]
    if "{" in body:  # unterminated object at the end (truncated output): take it, the brace repair closes it
        tail = body[body.rindex("{") :]
        return tail.split("```", 1)[0]
    return None


def parse_group_scores(text: str | None, n: int) -> GroupScores:
    """Read GroupRank's JSON answer for a group of ``n`` documents (rules of ``rerank_groupwise.py``).

    Patterns come from ``mmrank/prompts/grouprank.yaml``.

    1. Take the ``<answer>...</answer>`` body when present, else the whole text.
    2. Take the last fenced ```` ```json ```` block, else the last ``{...}``; as an extension, an unterminated
       trailing ``{...`` (truncated generation) is also taken.
    3. Repairs of the official code: ``"[7]]"`` -> ``"[7]"``; one ``}`` appended when ``{`` outnumber ``}``;
       whitespace collapsed.
    4. ``json.loads`` (too deeply nested or otherwise invalid JSON fails the group); keys ``"[i]"`` (or ``"i"``,
       brackets and spaces around it ignored) map to position ``i-1``; values are divided by 10.

    Keys: ``i`` must be written in decimal digits (``str.isdecimal``; leading zeros allowed, ``"[03]"`` is 3) and lie
    in ``1..n``. Values: JSON numbers, or strings holding a number (``"7"``, ``"7.5"``, ``" 1e0 "``); booleans,
    ``null``, lists and objects are not numbers. Entry-level rules (recorded, the rest of the group is kept; the
    official code would zero the group): bad keys and non-numeric or non-finite values are dropped, values outside
    0..10 are clipped. A document with no valid entry is absent from ``scores``. If nothing parses, the result is
    ``failed`` and the caller gives every document of the group 0 (the official fallback).
    """
    prompt = load_prompt("grouprank")
    pats = dict(prompt.extra.get("output_patterns", {}))
    raw = text or ""
    body = search_group(prompt.output_regex or "", raw)
    body = body.strip() if body is not None else raw
    cand = _json_candidate(body, pats)
    if cand is None:
        return GroupScores({}, True, ["no JSON object in output"])
    notes: list[str] = []
    s = cand.strip()
    fixed = re.sub(pats["doubled_bracket"], r"\1", s)
    if fixed != s:
        notes.append("repaired doubled ']' in key")
    s = fixed
    if s.count("{") > s.count("}"):
        s += "}"
        notes.append("appended missing '}'")
    s = " ".join(s.split())
    try:
        obj = json.loads(s)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is an over-long integer
        return GroupScores({}, True, [*notes, "invalid JSON"])
    if not isinstance(obj, dict):
        return GroupScores({}, True, [*notes, "JSON is not an object"])
    scores: dict[int, float] = {}
    bad_key = bad_val = clipped = dup = 0
    for k, v in obj.items():
        key = str(k).strip().strip("[]").strip()
        pos = bounded_int(key, n) if key.isdecimal() else None
        if pos is None or pos < 1:
            bad_key += 1
            continue
        val = _number(v)
        if val is None:
            bad_val += 1
            continue
        if val < 0 or val > 10:
            clipped += 1
            val = min(max(val, 0.0), 10.0)
        if pos - 1 in scores:
            dup += 1
        scores[pos - 1] = val / 10.0
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


def _number(v: object) -> float | None:
    """A finite float from a JSON number or numeric string; ``None`` for anything else (never raises)."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    if isinstance(v, str) and len(v) > 64:  # no score needs more; keeps float() cheap
        return None
    try:
        val = float(v)
    except (ValueError, OverflowError):
        return None
    return val if math.isfinite(val) else None
