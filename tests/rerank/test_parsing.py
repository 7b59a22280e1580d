"""Parsers of generative rerankers: good, malformed and adversarial outputs (no model needed)."""

from __future__ import annotations

import pytest

from mmrank.rerank.parsing import extract_answer, parse_choice, parse_group_scores, parse_permutation

# ---------------------------------------------------------------- permutations (RankGPT / ReasonRank)


def test_permutation_well_formed():
    p = parse_permutation("[3] > [1] > [4] > [2]", 4)
    assert p.order == [2, 0, 3, 1]
    assert (p.n_read, p.duplicates, p.out_of_range, p.missing) == (4, 0, 0, 0)
    assert p.notes() == []


def test_permutation_dedupe_drop_and_append_missing_in_input_order():
    # 2 repeated, 9 and 0 are out of range for n=5, ids 1 and 4 never mentioned
    p = parse_permutation("[2] > [5] > [2] > [9] > [0] > [3]", 5)
    assert p.order == [1, 4, 2, 0, 3]
    assert (p.n_read, p.duplicates, p.out_of_range, p.missing) == (3, 1, 2, 2)
    assert p.notes() == [
        "1 duplicate id(s) dropped",
        "2 out-of-range id(s) dropped",
        "2 missing id(s) appended in input order",
    ]


def test_permutation_other_separators_and_prose():
    assert parse_permutation("Ranking: 3, 1 and then (2).", 3).order == [2, 0, 1]
    assert parse_permutation("[10] > [1]", 10).order == [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("text", ["", "I cannot rank these passages.", "[] > []", "[0] > [99]", None])
def test_permutation_nothing_usable_keeps_input_order(text):
    p = parse_permutation(text, 4)
    assert p.order == [0, 1, 2, 3]
    assert p.failed
    assert p.notes() == ["no valid id in output, kept input order"]


def test_permutation_adversarial_huge_numbers_and_negative_signs():
    # '-1' reads as the digits '1'; a 40-digit number is out of range, not an overflow
    p = parse_permutation("[-1] > [" + "9" * 40 + "] > [2]", 3)
    assert p.order == [0, 1, 2]
    assert p.out_of_range == 1 and p.n_read == 2


def test_permutation_empty_list():
    assert parse_permutation("[1]", 0).order == []


# ---------------------------------------------------------------- think / answer


def test_extract_answer_tags_case_insensitive():
    body, how = extract_answer("<THINK>doc [2] mentions X</THINK>\n<Answer>[2] > [1]</Answer>")
    assert (body, how) == ("[2] > [1]", "tags")


def test_extract_answer_only_opening_tag():
    body, how = extract_answer("<think>long reasoning, truncated <answer>[3] > [1")
    assert (body, how) == ("[3] > [1", "after-answer")


def test_extract_answer_without_think_block_uses_after_answer():
    # official ReasonRank: response.split('<answer>')[-1], not cut at </answer> (ids after it are read too)
    assert extract_answer("<answer>[1]</answer>") == ("[1]</answer>", "after-answer")


def test_extract_answer_missing():
    assert extract_answer("<think>[4] is best but I ran out of tokens") == (None, "none")
    assert extract_answer("") == (None, "none")


# ---------------------------------------------------------------- Rank-R1 choice


def test_choice_good():
    assert parse_choice("<think>the third talks about it</think> <answer>[3]</answer>", 5) == 2
    assert parse_choice("<think></think><answer> [1] </answer>", 1) == 0


@pytest.mark.parametrize(
    "text",
    [
        "<answer>[3]</answer>",  # no think block: the official pattern fails
        "<think>x</think> <answer>3</answer>",  # no brackets
        "<think>x</think> <answer>[3] > [1]</answer>",  # more than one label
        "<think>x</think> <answer>[6]</answer>",  # out of range for n=5
        "<think>x</think> <answer>[0]</answer>",
        "<think>[2]</think>",  # no answer
        "",
    ],
)
def test_choice_malformed_is_none(text):
    assert parse_choice(text, 5) is None


def test_choice_takes_first_answer_like_official_regex():
    assert parse_choice("<think>a</think><answer>[2]</answer><think>b</think><answer>[4]</answer>", 5) == 1


# ---------------------------------------------------------------- GroupRank JSON scores


def test_group_scores_official_format():
    out = '<reason>doc 3 answers it</reason>\n<answer>\n```json\n{"[1]": 5, "[2]": 3, "[3]": 8}\n```\n</answer>'
    g = parse_group_scores(out, 3)
    assert not g.failed
    assert g.scores == {0: 0.5, 1: 0.3, 2: 0.8}
    assert g.notes == []


def test_group_scores_last_json_block_wins():
    out = '```json\n{"[1]": 1}\n```\nrevised:\n```json\n{"[1]": 9, "[2]": 2}\n```'
    assert parse_group_scores(out, 2).scores == {0: 0.9, 1: 0.2}


def test_group_scores_bare_object_without_fence():
    g = parse_group_scores('<answer>scores: {"[2]": 10, "[1]": 0}</answer>', 2)
    assert g.scores == {1: 1.0, 0: 0.0}


def test_group_scores_repairs_doubled_bracket_and_missing_brace():
    g = parse_group_scores('<answer>```json\n{"[1]": 4, "[7]]": 6\n```</answer>', 7)
    assert g.scores == {0: 0.4, 6: 0.6}
    assert "repaired doubled ']' in key" in g.notes
    assert "appended missing '}'" in g.notes
    assert "5 document(s) without a score" in g.notes


def test_group_scores_truncated_unfenced_object():
    g = parse_group_scores('<reason>ok</reason><answer> {"[1]": 2, "[2]": 7', 2)
    assert g.scores == {0: 0.2, 1: 0.7}
    assert "appended missing '}'" in g.notes


def test_group_scores_entry_level_rules():
    out = '{"[1]": 12, "[2]": -3, "[3]": "7", "[4]": "high", "[5]": true, "[9]": 5, "x": 1, "3": 2}'
    g = parse_group_scores(out, 5)
    # [1] clipped to 10, [2] clipped to 0, [3]="7" read then overwritten by key "3" (last wins)
    assert g.scores == {0: 1.0, 1: 0.0, 2: 0.2}
    assert "2 key(s) outside [1]..[5] dropped" in g.notes
    assert "2 non-numeric score(s) dropped" in g.notes
    assert "2 score(s) clipped to 0..10" in g.notes
    assert "1 repeated key(s): last value kept" in g.notes


@pytest.mark.parametrize(
    "text, note",
    [
        ("I think document 1 is best.", "no JSON object in output"),
        ('```json\n{"[1]": 5,, "[2]"}\n```', "invalid JSON"),
        ("```json\n[5, 3]\n```", "JSON is not an object"),
        ('{"[0]": 5, "[4]": 3}', "no valid score in JSON"),
        ("", "no JSON object in output"),
    ],
)
def test_group_scores_failures(text, note):
    g = parse_group_scores(text, 3)
    assert g.failed and g.scores == {}
    assert g.notes[-1] == note


def test_group_scores_nan_and_infinity_rejected():
    g = parse_group_scores('{"[1]": NaN, "[2]": Infinity, "[3]": 4}', 3)
    assert g.scores == {2: 0.4}
    assert "2 non-numeric score(s) dropped" in g.notes
