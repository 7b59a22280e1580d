"""ERank: answer parsing (good, malformed, adversarial) and the s x P(s) score on known log-probabilities."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.causal import CausalLM, Generation
from mmrank.rerank.erank import ERankReranker, answer_probability, parse_answer
from mmrank.types import Item, Query
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> CausalLM:
    return CausalLM(str(save_tiny_qwen(tmp_path_factory.mktemp("qwen"))), device="cpu")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("<think> fine </think><answer> 7 </answer>", 7),
        ("<think>a</think>\n<answer>10</answer>", 10),
        ("<answer>0</answer>", 0),
        ("<think>x</think><answer>4", 4),  # cut off by max_new_tokens right after the integer
        ("<answer> 5</ans", 5),  # cut off inside the closing tag
        ("<answer>3</answer> then again <answer>9</answer>", 9),  # the last answer counts
        ("<think>I'd say <answer>2</answer>?</think><answer>6</answer>", 6),
    ],
)
def test_parse_good(text, value):
    p = parse_answer(text)
    assert p.value == value and p.note is None
    assert p.span is not None and text[p.span[0] : p.span[1]] == str(value)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("<think>relevant</think> 8", "no integer"),
        ("<answer>seven</answer>", "no integer"),
        ("<answer>1 0</answer>", "no integer"),
        ("<answer>-3</answer>", "no integer"),
        ("<answer>11</answer>", "outside 0-10"),
        ("<answer>100000000000000000000</answer>", "outside 0-10"),
        ("", "no integer"),
    ],
)
def test_parse_malformed_and_adversarial(text, note):
    p = parse_answer(text)
    assert p.value is None and note in (p.note or "")


def test_packaged_regex_is_the_parsers():
    import re

    from mmrank.prompts import load_prompt

    custom = re.compile(r"score=(\d+)")
    assert parse_answer("score=7 <answer>3</answer>", pattern=custom).value == 7
    assert parse_answer("score=7 <answer>3</answer>").value == 3  # default: the prompt's output_regex
    assert load_prompt("erank").output_regex is not None


def test_answer_probability_multi_token_integer(lm):
    text = "10</answer>"
    ids = lm.encode(text)
    assert lm.tokenizer.decode(ids[:2]) == "10"  # "1", "0" are separate tokens
    lps = [-0.1, -0.2] + [-1.5] * (len(ids) - 2)
    g = Generation(text, ids, lps)
    prefill = "<think> </think><answer>"
    parsed = parse_answer(prefill + text)
    assert parsed.value == 10
    p = answer_probability(g, lm.tokenizer, parsed.span, offset=len(prefill))
    assert p == pytest.approx(math.exp(-0.3))


class ScriptedGenerator:
    """Stands in for the model: returns fixed generations; everything else is the real tiny LM's tokenizer."""

    def __init__(self, lm: CausalLM, outputs: list[tuple[str, list[float]]]) -> None:
        self.tokenizer, self.max_length, self.calls = lm.tokenizer, 4096, 0
        self.outputs = outputs
        self._lm = lm

    def encode(self, t):
        return self._lm.encode(t)

    def count(self, t):
        return self._lm.count(t)

    def truncate_text(self, t, n):
        return self._lm.truncate_text(t, n)

    def chat(self, messages, **kw):
        return self._lm.chat(messages, **kw)

    def generate_detailed(self, prompts, **kw):
        self.calls += 1
        out = []
        for text, lps in self.outputs[: len(prompts)]:
            ids = self._lm.encode(text)
            out.append(Generation(text, ids, (lps + [-9.0] * len(ids))[: len(ids)]))
        return out


def test_erank_score_is_integer_times_its_probability(lm):
    outputs = [
        ("<think>on topic</think><answer>8</answer>", None),
        ("<think>no</think><answer>oops</answer>", None),
        ("<think>meh</think><answer>3</answer>", None),
    ]
    gens = []
    for text, _ in outputs:
        ids = lm.encode(text)
        lps = [-0.01] * len(ids)
        for i, t in enumerate(ids):  # the digit token, when there is one
            if lm.tokenizer.decode([t]).isdigit():
                lps[i] = -0.4
        gens.append((text, lps))
    fake = ScriptedGenerator(lm, gens)
    r = ERankReranker(lm=fake)  # type: ignore[arg-type]
    queries = [Query("q", text="capital of France")]
    from mmrank.types import Hit, Ranking, Run

    run = Run([Ranking("q", [Hit(f"d{i}", 3.0 - i, Item(f"d{i}", text=f"doc {i}")) for i in range(3)])])
    out = r.rerank(queries, run)["q"]
    got = {h.id: h.score for h in out.hits}
    assert got["d0"] == pytest.approx(8 * math.exp(-0.4))
    assert got["d2"] == pytest.approx(3 * math.exp(-0.4))
    assert got["d1"] == 0.0
    assert out.ids == ["d0", "d2", "d1"]
    assert out.fallbacks == ["erank: no integer <answer>, scored 0 (1/3 docs)"]
    assert out.model_calls == 1


def test_erank_prompt_and_tiny_model_fallback(lm):
    r = ERankReranker(lm=lm, think=False, max_new_tokens=2)
    text = r.render("QQ", "DD")
    assert text.endswith(
        "Here is the query: QQ Here is the document: DD After thinking, directly choose a relevance score from "
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]. - 0 represents completely not related. - 10 means perfectly related. "
        "Desired output format: <think> put your thinking here </think><answer> Only allows an integer here "
        "</answer> Your output:<|im_end|>\n<|im_start|>assistant\n<think> </think><answer>"
    )
    res = r.rank("capital of France", ["Paris is the capital.", "Dogs bark."])
    # a random tiny model writes no digits: every document falls back to 0, input order kept, and it is recorded
    assert res.ids == ["0", "1"] and res.scores[0] == 0.0 and res.scores[1] < 0.0  # tie kept in input order
    assert res.fallbacks == ["erank: no integer <answer>, scored 0 (2/2 docs)"]
    assert ERankReranker(lm=lm).max_new_tokens == 1024
