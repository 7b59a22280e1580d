"""EBR answer parsing: clean lists, repairs recorded as fallbacks, and always a permutation."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mmrank.cir.parse import parse_grid_ranking
from mmrank.prompts import load_prompt

ANCHOR = load_prompt("ebr").regex()


def parse(text, n, **kw):
    return parse_grid_ranking(text, n, anchor=ANCHOR, **kw)


def test_clean_bracketed_list():
    assert parse("Ranked list: [3, 1, 2]", 3) == ([2, 0, 1], [])
    assert parse("ranked list:[2,3,1]\nReasons: image 3 shows 2 dogs", 3) == ([1, 2, 0], [])
    assert parse("Ranked list: [2] > [1] > [3]", 3) == ([1, 0, 2], [])
    assert parse("Ranked list: [0, 2, 1]", 3, first_index=0) == ([0, 2, 1], [])


def test_duplicates_outside_and_missing_are_repaired_and_recorded():
    order, fb = parse("Ranked list: [3, 3, 0, 12, 1]", 4)
    assert order == [2, 0, 1, 3]  # 3 -> 2, 1 -> 0, then 2 and 4 appended in first-stage order
    assert "ebr: dropped 1 duplicate index(es)" in fb
    assert any(f.startswith("ebr: dropped 2 index(es) outside 1..4: 0, 12") for f in fb)
    assert "ebr: appended 2 unranked candidate(s) in first-stage order" in fb


def test_no_anchor_or_no_number():
    order, fb = parse("I think 2 is best, then 1.", 3)
    assert order == [1, 0, 2]
    assert fb[0].startswith("ebr: no 'Ranked list'") and fb[-1].startswith("ebr: appended 1")
    assert parse("I cannot tell.", 4) == (
        [0, 1, 2, 3],
        ["ebr: no 'Ranked list' in the answer; read indices from the whole answer",
         "ebr: no parsable ranking; kept the first-stage order"],
    )  # fmt: skip
    assert parse("Ranked list: [99, 42]", 3)[0] == [0, 1, 2]
    assert parse("", 0) == ([], [])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 ,[]>Ranked list:abc\n")), max_size=200), st.integers(1, 30))
def test_always_a_permutation(text, n):
    order, fb = parse(text, n)
    assert sorted(order) == list(range(n))
    assert all(isinstance(f, str) for f in fb)


def test_long_answer_parses():
    text = "Ranked list: [" + ", ".join(str(i % 50 + 1) for i in range(200_000)) + "]"
    order, fb = parse(text, 16)
    assert order == list(range(16)) and any("outside" in f for f in fb) and any("duplicate" in f for f in fb)
    assert re.compile(ANCHOR.pattern)  # the anchor is the prompt file's output_regex
