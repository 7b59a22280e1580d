"""Rank-R1 setwise heapsort: hand-worked trace, oracle top-k, comparison counts, prompt, fallbacks."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

from mmrank.rerank.setwise import SetwiseReranker, heapsort_topk
from mmrank.types import Hit, Item, Query, Ranking, Run

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.rerank.scripted_llm import ScriptedLLM, numbered_docs, oracle_ranking
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

REL = [1, 5, 3, 7, 2, 6, 4]


def drive(n, c, k, rel, answer=None):
    """Run the heapsort coroutine with an oracle (or a fixed answer); returns (order, comparisons)."""
    gen = heapsort_topk(n, c, k)
    seen = []
    try:
        cand = next(gen)
        while True:
            seen.append(list(cand))
            best = max(range(len(cand)), key=lambda p: rel[cand[p]]) if answer is None else answer
            cand = gen.send(best)
    except StopIteration as stop:
        return stop.value, seen


def test_heapsort_hand_worked_binary_heap():
    """n=7, two children per node, k=3, relevance 1,5,3,7,2,6,4 (trace in the comments of the assertions).

    build: slot 2 {2,5,6} -> 5 swaps up; slot 1 {1,3,4} -> 3 up; slot 0 {0,3,5} -> 3 up, then slot 1 {0,1,4} -> 1 up
    extract 1 (doc 3): root {6,1,5} -> 5; slot 2 {6,2} -> 6 stays
    extract 2 (doc 5): root {2,1,6} -> 1; slot 1 {2,0,4} -> 2 stays
    extract 3 (doc 1): k reached
    """
    order, seen = drive(7, 2, 3, REL)
    assert seen == [[2, 5, 6], [1, 3, 4], [0, 3, 5], [0, 1, 4], [6, 1, 5], [6, 2], [2, 1, 6], [2, 0, 4]]
    assert order == [3, 5, 1, 0, 2, 4, 6]


def test_heapsort_unusable_answers_keep_parent():
    # n=4, one node holds all, k=2: no swap ever; extraction moves the last slot to the root each time
    order, seen = drive(4, 3, 2, REL, answer=-1)  # -1 is no position in the list: an unusable answer
    assert seen == [[0, 1, 2, 3], [3, 1, 2]]
    assert order == [0, 3, 1, 2]


@pytest.mark.parametrize("c", [1, 2, 3, 5, 19])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_heapsort_oracle_gives_true_top_k(c, k):
    rng = random.Random(1000 * c + k)
    for n in list(range(0, 12)) + [20, 33, 50]:
        rel = rng.sample(range(1000), n)
        order, _ = drive(n, c, k, rel)
        truth = sorted(range(n), key=lambda i: -rel[i])[: min(k, n)]
        assert order[: len(truth)] == truth
        assert order[len(truth) :] == sorted(set(range(n)) - set(truth))


@pytest.mark.parametrize("n", range(2, 21))
@pytest.mark.parametrize("k", [1, 2, 5, 10, 25])
def test_comparisons_when_one_prompt_holds_the_list(n, k):
    # n <= num_child + 1: one comparison builds the heap, then one per extraction until k (or n-1) are placed
    rel = random.Random(n * k).sample(range(100), n)
    _, seen = drive(n, 19, k, rel)
    assert len(seen) == min(k, n - 1)


def test_comparisons_for_an_already_ordered_heap():
    # input sorted best-first is already a max-heap: building costs one comparison per internal slot, no swap;
    # internal slots of a c-ary heap of n are those i with c*i+1 < n
    for n, c in [(20, 19), (50, 3), (100, 19), (7, 2)]:
        gen = heapsort_topk(n, c, 1)
        count = 0
        try:
            cand = next(gen)
            while True:
                count += 1
                cand = gen.send(max(range(len(cand)), key=lambda p: -cand[p]))  # smaller index = better
        except StopIteration:
            pass
        assert count == (n - 2) // c + 1


# ---------------------------------------------------------------- the reranker


def make_run(rels_by_query):
    queries, rankings = [], []
    for qid, rels in rels_by_query.items():
        q = Query(qid, text=f"query {qid}")
        hits = [Hit(f"{qid}-d{i}", float(-i), Item(f"{qid}-d{i}", text=f"doc d{i} rel{r}")) for i, r in enumerate(rels)]
        queries.append(q)
        rankings.append(Ranking(qid, hits, query=q))
    return queries, Run(rankings)


def r1_oracle(messages):
    return f"<think>checking</think> <answer>[{oracle_ranking(messages)[0]}]</answer>"


def test_rank_r1_prompt_matches_official_template():
    r = SetwiseReranker(lm=ScriptedLLM(r1_oracle))
    msgs = r.build_messages("what is x", ["alpha", "beta"])
    assert msgs == [
        {
            "role": "system",
            "content": "A conversation between User and Assistant. The user asks a question, and the Assistant solves "
            "it. The assistant first thinks about the reasoning process in the mind and then provides the user with "
            "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
            "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
            "</answer>.",
        },
        {
            "role": "user",
            "content": 'Given the query: "what is x", which of the following documents is most relevant?\n[1] alpha\n'
            "[2] beta\nAfter completing the reasoning process, please provide only the label of the most relevant "
            "document to the query, enclosed in square brackets, within the answer tags. For example, if the third "
            "document is the most relevant, the answer should be: <think> reasoning process here </think> "
            "<answer>[3]</answer>.",
        },
    ]
    assert (r.num_child, r.k, r.max_new_tokens, r.max_doc_tokens, r.max_query_tokens) == (19, 10, 2048, 512, 32)


@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_r1_oracle_model_reproduces_hand_worked_order(shuffle):
    llm = ScriptedLLM(r1_oracle)
    queries, run = make_run({"q": REL})
    out = SetwiseReranker(lm=llm, num_child=2, k=3, shuffle=shuffle).rerank(queries, run)["q"]
    assert out.ids == [f"q-d{i}" for i in (3, 5, 1, 0, 2, 4, 6)]
    assert out.model_calls == 8 and out.fallbacks == []
    shown = [sorted(int(t.split()[1][1:]) for t in numbered_docs(c).values()) for c in llm.prompts]
    assert shown[0] == [2, 5, 6] and shown[5] == [2, 6]
    if not shuffle:
        assert [t.split()[1] for t in numbered_docs(llm.prompts[0]).values()] == ["d2", "d5", "d6"]


def test_rank_r1_shuffle_is_seeded_and_changes_display_order():
    def shown_orders(seed):
        llm = ScriptedLLM(r1_oracle)
        queries, run = make_run({"q": list(range(20))})
        SetwiseReranker(lm=llm, seed=seed).rerank(queries, run)
        return [[t.split()[1] for t in numbered_docs(c).values()] for c in llm.prompts]

    a, b, c = shown_orders(0), shown_orders(0), shown_orders(1)
    assert a == b and a != c
    assert a[0] != [f"d{i}" for i in range(20)]


def test_rank_r1_batches_queries_and_records_unparseable_answers():
    def respond(messages):  # query b gets answers without the think/answer tags
        return "[2]" if "query b" in messages[1]["content"] else r1_oracle(messages)

    llm = ScriptedLLM(respond)
    queries, run = make_run({"a": REL, "b": [9, 8, 7, 6]})
    out = SetwiseReranker(lm=llm, num_child=3, k=2).rerank(queries, run)
    # b: every answer lacks the tags -> no swap; n=4, c=3, k=2 is the hand-worked no-swap case
    assert out["b"].ids == ["b-d0", "b-d3", "b-d1", "b-d2"]
    assert out["b"].fallbacks == ["rank-r1: 2 of 2 comparisons unparseable, kept the parent (no swap)"]
    assert out["a"].ids[:2] == ["a-d3", "a-d5"] and out["a"].fallbacks == []
    assert len(llm.batches[0]) == 2  # first comparison of both queries in one call
    assert sum(len(b) for b in llm.batches) == out["a"].model_calls + out["b"].model_calls


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    return str(save_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen")))


def test_tiny_qwen_end_to_end(tiny_qwen):
    queries, run = make_run({"a": REL, "b": [3, 1, 2, 5, 4]})
    out = SetwiseReranker(tiny_qwen, num_child=3, k=2, max_new_tokens=6, device="cpu").rerank(queries, run)
    for qid in ("a", "b"):
        assert sorted(out[qid].ids) == sorted(run[qid].ids)
        assert out[qid].fallbacks and "unparseable" in out[qid].fallbacks[0]
        assert out[qid].model_calls >= 2
