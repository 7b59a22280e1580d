"""Sliding-window listwise rerankers (RankGPT, ReasonRank): window schedule, prompts, batching, fallbacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mmrank.errors import ContextLengthError
from mmrank.rerank.listwise import ListwiseReranker, ReasonRankReranker, sliding_windows
from mmrank.types import Hit, Item, Query, Ranking, Run

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.rerank.scripted_llm import ScriptedLLM, numbered_docs, oracle_ranking
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

# true relevance of d0..d6 (input order d0, d1, ..., d6)
REL = [1, 5, 3, 7, 2, 6, 4]


def make_run(rels_by_query: dict[str, list[int]]) -> tuple[list[Query], Run]:
    queries, rankings = [], []
    for qid, rels in rels_by_query.items():
        q = Query(qid, text=f"query {qid}")
        hits = [
            Hit(f"{qid}-d{i}", float(len(rels) - i), Item(f"{qid}-d{i}", text=f"doc d{i} rel{r}"))
            for i, r in enumerate(rels)
        ]
        queries.append(q)
        rankings.append(Ranking(qid, hits, query=q))
    return queries, Run(rankings)


def rankgpt_oracle(messages) -> str:
    return " > ".join(f"[{i}]" for i in oracle_ranking(messages))


# ---------------------------------------------------------------- window schedule


def test_windows_hand_worked():
    assert sliding_windows(7, 4, 2) == [(3, 7), (1, 5), (0, 3)]
    assert sliding_windows(100, 20, 10) == [(s, s + 20) for s in range(80, -1, -10)]
    assert sliding_windows(20, 20, 10) == [(0, 20)]
    assert sliding_windows(5, 20, 10) == [(0, 5)]
    assert sliding_windows(25, 20, 10) == [(5, 25), (0, 15)]
    assert sliding_windows(0, 20, 10) == []
    assert sliding_windows(6, 3, 3) == [(3, 6), (0, 3)]


def test_windows_cover_every_position_and_end_at_top():
    for n in range(1, 60):
        for w, s in [(4, 2), (20, 10), (5, 5), (3, 1), (10, 7)]:
            ws = sliding_windows(n, w, s)
            assert ws[-1][0] == 0 and ws[0][1] == n
            assert set().union(*(range(a, b) for a, b in ws)) == set(range(n))
            assert all(b - a <= w for a, b in ws)


@pytest.mark.parametrize("w, s", [(1, 1), (4, 0), (4, 5)])
def test_windows_reject_bad_parameters(w, s):
    with pytest.raises(ValueError):
        sliding_windows(10, w, s)


# ---------------------------------------------------------------- RankGPT prompt


def test_rankgpt_prompt_matches_official_template():
    r = ListwiseReranker(lm=ScriptedLLM(rankgpt_oracle))
    msgs = r.build_messages("what is x", ["alpha", "beta"])
    assert msgs == [
        {
            "role": "system",
            "content": "You are RankGPT, an intelligent assistant that can rank passages based on their relevancy "
            "to the query.",
        },
        {
            "role": "user",
            "content": "I will provide you with 2 passages, each indicated by number identifier []. \n"
            "Rank the passages based on their relevance to query: what is x.",
        },
        {"role": "assistant", "content": "Okay, please provide the passages."},
        {"role": "user", "content": "[1] alpha"},
        {"role": "assistant", "content": "Received passage [1]."},
        {"role": "user", "content": "[2] beta"},
        {"role": "assistant", "content": "Received passage [2]."},
        {
            "role": "user",
            "content": "Search Query: what is x. \nRank the 2 passages above based on their relevance to the search "
            "query. The passages should be listed in descending order using identifiers. The most relevant "
            "passages should be listed first. The output format should be [] > [], e.g., [1] > [2]. Only "
            "response the ranking results, do not say any word or explain.",
        },
    ]


def test_rankgpt_passage_text_title_and_word_limit():
    r = ListwiseReranker(lm=ScriptedLLM(rankgpt_oracle), max_words=4)
    assert r.passage("Title: T Content: one two three four five") == "Title: T Content: one"
    assert r.passage("Title: Content: a  b\nc") == "a b c"


# ---------------------------------------------------------------- the sliding window, hand-worked


def test_sliding_window_hand_worked_seven_documents():
    """Window 4, step 2 over d0..d6 with relevance 1,5,3,7,2,6,4 and a model that sorts each window perfectly.

    (3,7): d3 d4 d5 d6 -> d3 d5 d6 d4      order d0 d1 d2 d3 d5 d6 d4
    (1,5): d1 d2 d3 d5 -> d3 d5 d1 d2      order d0 d3 d5 d1 d2 d6 d4
    (0,3): d0 d3 d5    -> d3 d5 d0         order d3 d5 d0 d1 d2 d6 d4
    """
    llm = ScriptedLLM(rankgpt_oracle)
    queries, run = make_run({"q": REL})
    out = ListwiseReranker(lm=llm, window=4, step=2).rerank(queries, run)["q"]
    assert out.ids == [f"q-d{i}" for i in (3, 5, 0, 1, 2, 6, 4)]
    shown = [[numbered_docs(c)[i].split()[1] for i in sorted(numbered_docs(c))] for c in llm.prompts]
    assert shown == [["d3", "d4", "d5", "d6"], ["d1", "d2", "d3", "d5"], ["d0", "d3", "d5"]]
    assert out.model_calls == 3 and out.fallbacks == [] and out.stage == "rankgpt"
    assert out.scores == [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]


def test_sliding_window_batches_round_r_of_all_queries_together():
    llm = ScriptedLLM(rankgpt_oracle)
    queries, run = make_run({"a": REL, "b": [2, 9, 4]})
    out = ListwiseReranker(lm=llm, window=4, step=2).rerank(queries, run)
    assert [len(b) for b in llm.batches] == [2, 1, 1]  # round 0 holds a's (3,7) and b's only window
    assert out["b"].ids == ["b-d1", "b-d2", "b-d0"] and out["b"].model_calls == 1
    assert out["a"].model_calls == 3
    assert all(kw["temperature"] == 0.0 for kw in llm.gen_kwargs)


def test_top_k_only_reranks_the_head():
    llm = ScriptedLLM(rankgpt_oracle)
    queries, run = make_run({"q": REL})
    out = ListwiseReranker(lm=llm, window=4, step=2).rerank(queries, run, top_k=4)["q"]
    # head d0..d3 (one window) sorted, tail d4 d5 d6 keeps first-stage order below
    assert out.ids == ["q-d3", "q-d1", "q-d2", "q-d0", "q-d4", "q-d5", "q-d6"]
    assert len(llm.prompts) == 1


def test_parse_failure_keeps_window_order_and_is_recorded():
    def respond(messages):
        docs = numbered_docs(messages)
        if any("d6" in t for t in docs.values()):
            return "I am sorry, I cannot help with that."
        return "[2] > [2] > [9]"  # d? second first, rest appended

    queries, run = make_run({"q": REL})
    out = ListwiseReranker(lm=ScriptedLLM(respond), window=4, step=2).rerank(queries, run)["q"]
    # (3,7) unchanged; (1,5): d1 d2 d3 d4 -> d2 d1 d3 d4; (0,3): d0 d2 d1 -> d2 d0 d1
    assert out.ids == [f"q-d{i}" for i in (2, 0, 1, 3, 4, 5, 6)]
    assert out.fallbacks == [
        "rankgpt window 3-7: no valid id in output, kept input order",
        "rankgpt window 1-5: 1 duplicate id(s) dropped",
        "rankgpt window 1-5: 1 out-of-range id(s) dropped",
        "rankgpt window 1-5: 3 missing id(s) appended in input order",
        "rankgpt window 0-3: 1 duplicate id(s) dropped",
        "rankgpt window 0-3: 1 out-of-range id(s) dropped",
        "rankgpt window 0-3: 2 missing id(s) appended in input order",
    ]


def test_constructor_needs_exactly_one_model_source():
    with pytest.raises(ValueError):
        ListwiseReranker()
    with pytest.raises(ValueError):
        ListwiseReranker("some/model", lm=ScriptedLLM(rankgpt_oracle))


# ---------------------------------------------------------------- ReasonRank


def test_reasonrank_prompt_matches_official_template():
    r = ReasonRankReranker(lm=ScriptedLLM(rankgpt_oracle))
    msgs = r.build_messages("what is [1] x", ["alpha (2)", "beta"])
    assert msgs[0]["content"].startswith("You are RankLLM, an intelligent assistant that can rank passages")
    assert msgs[0]["content"].endswith("<think> reasoning process here </think> <answer> answer here </answer>.")
    assert msgs[1] == {
        "role": "user",
        "content": "I will provide you with 2 passages, each indicated by a numerical identifier []. Rank the passages "
        "based on their relevance to the search query: what is (1) x.\n\n[1] alpha (2)\n[2] beta\nSearch Query: "
        "what is (1) x.\nRank the 2 passages above based on their relevance to the search query. All the passages "
        "should be included and listed using identifiers, in descending order of relevance. The format of the "
        "answer should be [] > [], e.g., [2] > [1].",
    }
    assert len(msgs) == 2
    assert r.passage("see [3] and [x]") == "see (3) and [x]"
    assert r.max_new_tokens == 3172 and (r.window, r.step) == (20, 10)


def test_reasonrank_reads_answer_and_ignores_ids_in_reasoning():
    def respond(messages):
        order = oracle_ranking(messages)
        return (
            "<think>[1] looks weak, [4] mentions it</think>\n<answer>"
            + " > ".join(f"[{i}]" for i in order)
            + "</answer>"
        )

    llm = ScriptedLLM(respond)
    queries, run = make_run({"q": REL})
    out = ReasonRankReranker(lm=llm, window=4, step=2).rerank(queries, run)["q"]
    assert out.ids == [f"q-d{i}" for i in (3, 5, 0, 1, 2, 6, 4)]
    assert out.fallbacks == [] and out.stage == "reasonrank"
    assert llm.gen_kwargs[0]["max_new_tokens"] == 3172


def test_reasonrank_fallbacks_for_missing_answer_tags():
    r = ReasonRankReranker(lm=ScriptedLLM(rankgpt_oracle))
    assert r.parse("<think>long... <answer>[3] > [1]", 3) == (
        [2, 0, 1],
        ["think/answer pattern not matched, read the text after <answer>", "1 missing id(s) appended in input order"],
    )
    assert r.parse("thinking about [2] then [3]", 3) == (
        [1, 2, 0],
        [
            "no <answer> in output, ids read from the text after </think> (or the whole output)",
            "1 missing id(s) appended in input order",
        ],
    )
    # a year in the reasoning is not an id: only the text after the last </think> is read
    assert r.parse("<think>in 2019 [1] was best</think> [3] > [2]", 3)[0] == [2, 1, 0]
    strict = ReasonRankReranker(lm=ScriptedLLM(rankgpt_oracle), answer_required=True)
    assert strict.parse("thinking about [2] then [3]", 3) == ([0, 1, 2], ["no <answer> in output, kept input order"])


# ---------------------------------------------------------------- end to end with a real (tiny, random) Qwen2


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    return str(save_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen")))


@pytest.mark.parametrize("cls", [ListwiseReranker, ReasonRankReranker])
def test_tiny_qwen_end_to_end_records_fallback_and_returns_permutation(tiny_qwen, cls):
    queries, run = make_run({"a": REL, "b": [3, 1, 2, 5, 4]})
    r = cls(tiny_qwen, window=4, step=2, max_new_tokens=6, device="cpu")
    out = r.rerank(queries, run)
    for qid in ("a", "b"):
        assert sorted(out[qid].ids) == sorted(run[qid].ids)
        assert len(out[qid].fallbacks) > 0  # 6 random tokens cannot hold a full permutation
    assert out["a"].model_calls == 3 and out["b"].model_calls == 2
    again = cls(tiny_qwen, window=4, step=2, max_new_tokens=6, device="cpu").rerank(queries, run)
    assert again["a"].ids == out["a"].ids and again["b"].ids == out["b"].ids


@pytest.mark.parametrize(
    "name, target",
    [
        ("listwise", "ListwiseReranker"),
        ("rankgpt", "ListwiseReranker"),
        ("reasonrank", "ReasonRankReranker"),
        ("setwise", "SetwiseReranker"),
        ("rank-r1", "SetwiseReranker"),
        ("rank_r1", "SetwiseReranker"),
        ("grouprank", "GroupRankReranker"),
    ],
)
def test_registry_names_resolve_and_accept_model(name, target):
    from mmrank.registry import resolve

    cls = resolve("reranker", name)
    assert cls.__name__ == target
    r = cls(model="/no/such/model", device="cpu")  # loading is lazy: nothing is read until the first rerank
    assert r._model == "/no/such/model"


def test_long_passages_are_cut_to_fit_the_backend_context(tiny_qwen):
    from mmrank.llm.causal import CausalLM

    lm = CausalLM(tiny_qwen, device="cpu", max_length=800)
    long = " ".join(["the cat sat on the mat"] * 60)  # 360 words per passage
    q = Query("q", text="cat")
    run = Run([Ranking("q", [Hit(f"d{i}", -i, Item(f"d{i}", text=f"{long} {i}")) for i in range(3)], query=q)])
    out = ListwiseReranker(lm=lm, window=4, step=2, max_new_tokens=4).rerank(None, run)["q"]
    cut = [f for f in out.fallbacks if "to fit max_length" in f]
    assert len(cut) == 1 and cut[0].startswith("rankgpt window 0-3: passages cut to ")
    assert sorted(out.ids) == ["d0", "d1", "d2"]  # the backend would have raised on a prompt that does not fit
    # a window whose empty passages do not fit is a clear error, not a silently cut prompt
    tiny = CausalLM(tiny_qwen, device="cpu", max_length=60)
    with pytest.raises(ContextLengthError, match="empty passages"):
        ListwiseReranker(lm=tiny, window=4, step=2, max_new_tokens=4).rerank(None, run)
