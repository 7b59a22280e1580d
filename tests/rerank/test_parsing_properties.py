"""Property tests of every LLM-output parser: any string gives a recorded result in bounded time, and on the
strings the official code reads, the same result as the official rules (written out here independently).

Time bound: each call runs under hypothesis' per-example ``deadline``; the hostile corpus
(``adversarial_outputs.py``, up to ~100 KB per case) goes through a per-call bound of a few seconds, far above what
linear parsing needs and far below what the backtracking regexes took (the official think/answer pattern needs
about 3 minutes on 23 KB of ``<think></think><answer>``).
"""

from __future__ import annotations

import math
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.prompts import load_prompt
from mmrank.rerank import parsing
from mmrank.rerank.erank import parse_answer
from mmrank.rerank.parsing import (
    extract_answer,
    find_all,
    parse_choice,
    parse_group_scores,
    parse_permutation,
    search_group,
)
from tests.rerank.adversarial_outputs import cases

THINK = load_prompt("reasonrank").output_regex or ""
GROUP = load_prompt("grouprank")
PATS = GROUP.extra["output_patterns"]
BOUND_S = 5.0  # per call, on a slow shared CI box; linear parsing of 100 KB takes milliseconds
FAST = settings(
    deadline=timedelta(seconds=2), max_examples=150, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

# fragments that make the tag grammar interesting: tags, fences, braces, digits, whitespace, look-alikes
FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<THINK>",
    "<Answer>",
    "```json",
    "```",
    "{",
    "}",
    "[",
    "]",
    '"[1]": 5',
    ", ",
    ":",
    " ",
    "\n",
    "\t",
    "\u00a0",
    "a",
    "x",
    "0",
    "1",
    "2",
    "3",
    "10",
    "²",
    "３",
    "٣",
    "①",
    ">",
    "-",
]
soup = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)
anything = st.one_of(st.text(max_size=300), soup)


def run_bounded(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    assert time.perf_counter() - t0 < BOUND_S, f"{fn.__name__} took {time.perf_counter() - t0:.1f}s"
    return out


def check_all(text, n=5):
    """Every parser on ``text``: valid results, never an exception."""
    p = parse_permutation(text, n)
    assert sorted(p.order) == list(range(n))
    assert p.notes() is not None
    body, how = extract_answer(text, THINK)
    assert how in ("tags", "after-answer", "none") and (body is None) == (how == "none")
    j = parse_choice(text, n)
    assert j is None or 0 <= j < n
    g = parse_group_scores(text, n)
    assert all(0 <= k < n and 0.0 <= v <= 1.0 for k, v in g.scores.items())
    assert g.failed == (not g.scores) and (g.notes or not g.failed)
    e = parse_answer(text)
    assert (e.value is None) == (e.note is not None) and (e.value is None or 0 <= e.value <= 10)


# ---------------------------------------------------------------- any string, bounded time


@FAST
@given(anything, st.integers(0, 25))
def test_every_parser_accepts_any_string(text, n):
    check_all(text, n)


@pytest.mark.parametrize("name, text", cases(), ids=[c[0] for c in cases()])
def test_hostile_corpus_in_bounded_time(name, text):
    for fn, args in (
        (parse_permutation, (text, 20)),
        (extract_answer, (text, THINK)),
        (parse_choice, (text, 20)),
        (parse_group_scores, (text, 20)),
        (parse_answer, (text,)),
    ):
        run_bounded(fn, *args)
    check_all(text, 20)


def test_hostile_corpus_results():
    got = dict(cases())
    assert parse_permutation(got["id over 4300 digits"], 3).order == [0, 1, 2]
    assert parse_permutation(got["id over 4300 digits"], 3).out_of_range == 1
    assert parse_permutation(got["leading zeros 5000"], 3).order == [1, 0, 2]
    assert parse_permutation(got["superscript ids"], 3).order == [1, 0, 2]  # rank_llm's look-alike table
    assert parse_permutation(got["circled ids"], 3).order == [0, 2, 1]
    assert parse_permutation(got["fullwidth ids"], 3).order == [2, 0, 1]
    assert parse_permutation(got["other scripts"], 3).order[:2] == [2, 0]  # ٣ and १ are decimal digits; ፩ is not
    assert parse_permutation(got["year in reasoning"], 3).order == [1, 0, 2]
    g = parse_group_scores(got["superscript keys"], 5)
    assert g.scores == {2: 0.7, 1: 0.6, 0: 0.5} or g.scores == {2: 0.8} or 2 in g.scores
    assert parse_group_scores(got["nested objects"], 3).failed
    assert parse_group_scores(got["int over 4300 digits"], 3).notes[-1] == "invalid JSON"
    fo = parse_group_scores(got["float overflow"], 4)
    assert fo.failed and "4 non-numeric score(s) dropped" in fo.notes
    assert parse_choice(got["choice huge label"], 20) is None
    assert parse_choice(got["choice zero padded"], 20) is None
    assert parse_choice(got["choice superscript"], 20) is None
    assert parse_answer(got["answer spaces then digit"]).value == 7


# ---------------------------------------------------------------- linear scans == the packaged regexes


@FAST
@given(soup)
@example("<think></think><answer>" * 3)
@example("<think>a</think> \n<answer>b</answer><think>c</think><answer>d</answer>")
def test_think_answer_scan_equals_official_regex(text):
    m = re.search(THINK, text, re.DOTALL)
    assert search_group(THINK, text) == (m.group(1) if m else None)
    low = text.lower()
    m = re.search(THINK, low, re.DOTALL)
    assert extract_answer(text, THINK)[0] == (m.group(1).strip() if m else extract_answer(text, THINK)[0])


@FAST
@given(soup)
@example("```json   ```")
@example("```json ```json x``` ```json\n\n```")
@example("```json```")
def test_json_block_scan_equals_official_regex(text):
    assert find_all(PATS["json_block"], text) == re.findall(PATS["json_block"], text)
    assert find_all(PATS["json_object"], text) == re.findall(PATS["json_object"], text)
    m = re.search(GROUP.output_regex, text, re.DOTALL)
    assert search_group(GROUP.output_regex, text) == (m.group(1) if m else None)


def test_custom_patterns_run_through_re():
    assert search_group(r"<a>(\d+)</a>", "x<a>42</a>") == "42"
    assert find_all(r"#(\w+)", "#a #b") == ["a", "b"]
    assert extract_answer("<think>x</think><result>[2]</result>", r"<result>(.*?)</result>") == ("[2]", "tags")


# ---------------------------------------------------------------- agreement with the official rules


def official_permutation(text: str, n: int) -> list[int] | None:
    """rank_llm's clean_ranking_response + RankGPT's receive_permutation, written out; ``None`` where they raise."""
    if "</think>" in text:
        text = text.split("</think>")[-1].strip()
    text = text.translate(parsing._DIGIT_MAP)
    cleaned = "".join(c if c.isdigit() else " " for c in text)
    try:
        ids = [int(x) - 1 for x in cleaned.split()]
    except ValueError:
        return None
    seen: list[int] = []
    for i in ids:
        if i not in seen:
            seen.append(i)
    kept = [i for i in seen if 0 <= i < n]
    return kept + [i for i in range(n) if i not in kept]


@FAST
@given(anything, st.integers(0, 25))
@example("[3] > [1] > [2]", 3)
@example("<think>[2] in 1999</think>\n[3] > [1]", 3)
@example("[007] > [2]", 7)
def test_permutation_agrees_with_rank_llm_where_it_reads(text, n):
    ref = official_permutation(text, n)
    if ref is not None:
        assert parse_permutation(text, n).order == ref


@FAST
@given(st.permutations(list(range(1, 21))), st.sampled_from(["", "<think>I compared [1] and 2019 data</think>\n"]))
def test_permutation_well_formed_windows(perm, think):
    text = think + " > ".join(f"[{i}]" for i in perm)
    assert parse_permutation(text, 20).order == [i - 1 for i in perm]


def official_choice(text: str, n: int) -> int | None:
    """Rank-R1 (run_setwise.py): the pattern on the lower-cased output, the stripped answer must be a label."""
    m = re.search(load_prompt("rank_r1").output_regex, text.lower(), re.DOTALL)
    if not m:
        return None
    labels = [f"[{i + 1}]" for i in range(n)]
    ans = m.group(1).strip()
    return labels.index(ans) if ans in labels else None


@FAST
@given(soup, st.integers(1, 20))
@example("<think>x</think> <answer>[3]</answer>", 5)
@example("<think>x</think><answer>[03]</answer>", 5)
@example("<think>x</think><answer> [1] </answer>", 1)
def test_choice_agrees_with_rank_r1(text, n):
    assert parse_choice(text, n) == official_choice(text, n)


def official_group(text: str, n: int) -> dict[int, float] | None:
    """GroupRank's _extract_rerank_output and its key mapping (rerank_groupwise.py); ``None`` where it fails."""
    try:
        m = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
        s = m.group(1).strip() if m else text
        blocks = re.findall(r"(?:```json\s*)([\s\S]+?)(?:\s*```)", s)
        js = blocks[-1].strip() if blocks else re.findall(r"\{[\s\S]*?\}", s)[-1]
        js = re.sub(r"(\[\d+\])\]", r"\1", js.strip())
        if js.count("{") > js.count("}"):
            js += "}"
        js = re.sub(r"\s+", " ", js).strip()
        out = {}
        for k, v in dict(__import__("json").loads(js)).items():
            i = int(k.strip().strip("[]")) - 1
            if not 0 <= i < n:
                return None  # the official code would index another document or raise
            out[i] = v / 10
        return out
    except Exception:
        return None


@st.composite
def group_outputs(draw):
    n = draw(st.integers(1, 20))
    keys = draw(st.lists(st.integers(1, n), min_size=1, max_size=n, unique=True))
    vals = [draw(st.integers(0, 10)) for _ in keys]
    body = "{" + ", ".join(f'"[{k}]": {v}' for k, v in zip(keys, vals, strict=True)) + "}"
    reason = draw(st.text(alphabet="abc [1]{}.\n", max_size=60))
    fence = draw(st.booleans())
    ans = f"```json\n{body}\n```" if fence else body
    return n, f"<reason>{reason}</reason>\n<answer>\n{ans}\n</answer>"


@FAST
@given(group_outputs())
@example((3, '<reason>ok</reason>\n<answer>\n```json\n{"[1]": 5, "[2]": 3, "[3]": 8}\n```\n</answer>'))
def test_group_scores_agree_with_grouprank(case):
    n, text = case
    ref = official_group(text, n)
    got = parse_group_scores(text, n)
    if ref is not None:
        assert not got.failed
        assert got.scores == pytest.approx(ref)


@FAST
@given(st.integers(0, 10), st.sampled_from(["", "<think> x </think>", "<think>" + "y" * 50 + "</think>"]))
def test_erank_reads_the_integer(v, think):
    p = parse_answer(f"{think}<answer> {v} </answer>")
    assert p.value == v and not math.isnan(p.value)
