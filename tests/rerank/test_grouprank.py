"""GroupRank: prompt, grouping, JSON repair in context, score averaging and fusion against hand-computed values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mmrank.rerank.grouprank import GroupRankReranker, average_scores, plan_groups
from mmrank.types import Hit, Item, Query, Ranking, Run

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.rerank.scripted_llm import ScriptedLLM, numbered_docs, rel
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)


def make_run(rels_by_query, first_stage=None):
    queries, rankings = [], []
    for qid, rels in rels_by_query.items():
        q = Query(qid, text=f"query {qid}")
        scores = first_stage or [float(len(rels) - i) for i in range(len(rels))]
        hits = [Hit(f"{qid}-d{i}", scores[i], Item(f"{qid}-d{i}", text=f"doc d{i} rel{r}")) for i, r in enumerate(rels)]
        queries.append(q)
        rankings.append(Ranking(qid, hits, query=q))
    return queries, Run(rankings)


def json_answer(messages, table=None) -> str:
    docs = numbered_docs(messages)
    scores = {f"[{i}]": (rel(t) if table is None else table[t.split()[1]]) for i, t in docs.items()}
    return f"<reason>fine</reason>\n<answer>\n```json\n{json.dumps(scores)}\n```\n</answer>"


# ---------------------------------------------------------------- pure pieces


def test_plan_groups_disjoint_and_overlapping():
    assert plan_groups([4, 0, 3, 1, 2], 2, 2) == [[4, 0], [3, 1], [2]]
    assert plan_groups([4, 0, 3, 1, 2], 3, 2) == [[4, 0, 3], [3, 1, 2], [2]]  # official loop: i in range(0, n, stride)
    assert plan_groups([4, 0, 3], 20, 20) == [[4, 0, 3]]
    assert plan_groups([], 20, 20) == []
    with pytest.raises(ValueError):
        plan_groups([1], 0, 1)


def test_average_scores_hand_computed():
    scores, unscored = average_scores(4, [(0, 0.1), (1, 0.5), (0, 0.9), (2, 0.3), (2, 0.0), (2, 0.3)])
    assert scores == pytest.approx([0.5, 0.5, 0.2, 0.0], abs=1e-6)
    assert unscored == [3]


def test_prompt_matches_official_template():
    r = GroupRankReranker(lm=ScriptedLLM(json_answer))
    msgs = r.build_messages("what is x", ["alpha", "beta"])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"].startswith(
        "Your task is to evaluate and rank documents based on how well they help answer the given query. Follow "
        "this evaluation priority:\n1. PRIMARY: Usefulness & Helpfulness - "
    )
    assert msgs[0]["content"].endswith("- 0: Not helpful at all, cannot assist with answering the query\n")
    assert msgs[1]["content"] == (
        "I will provide you 2 documents, each indicated by a numerical identifier []. Score these documents based "
        "on their Usefulness and Relevance to the query.\nQuery:\nwhat is x\n\nDocuments:\n[1]. alpha\n\n[2]. beta"
        "\n\n\n\n## Final Output Format\nYou must structure your response in exactly two parts: provide your brief "
        "reasoning process first, then output final scores in JSON format like below, with document IDs as string "
        "keys and integer scores as values for all 2 documents. \nThe reasoning process and answer are enclosed "
        "within <reason> </reason> and <answer> </answer> tags, respectively. Do NOT output anything outside the "
        "specified tags. Follow this exact format:\n<reason> \n[Analyze each document's usefulness and relevance "
        "to the query, explaining your scoring rationale]\n</reason>\n<answer> \n```json\n"
        '{"[1]": 5, "[2]": 3, "[3]": 8}\n``` \n</answer>\n'
    )
    assert (r.group_size, r.stride, r.repeats, r.temperature, r.top_p, r.max_new_tokens, r.max_chars) == (
        20,
        20,
        2,
        0.3,
        0.8,
        8000,
        3000,
    )
    assert r.document("a\n\nb" + "x" * 5000) == "a b" + "x" * 2997


# ---------------------------------------------------------------- the reranker, hand-computed


def test_two_repeats_averaged_with_repairs_hand_computed():
    """d0..d3, one group per repeat. Repeat 0 scores 1,5,3,7. Repeat 1 answers d0 9, d1 5, d2 1 with a doubled
    bracket and no closing brace, and forgets d3. Means: d0 (.1+.9)/2=.5, d1 .5, d2 (.3+.1)/2=.2, d3 .7.
    Order: d3, then the d0/d1 tie in first-stage order, then d2."""
    calls = []

    def respond(messages):
        calls.append(1)
        docs = numbered_docs(messages)
        if len(calls) == 1:
            return json_answer(messages)
        second = {"d0": 9, "d1": 5, "d2": 1}
        body = ", ".join(f'"[{i}]]": {second[t.split()[1]]}' for i, t in docs.items() if t.split()[1] in second)
        return "<reason>x</reason><answer>```json\n{" + body + "\n```</answer>"

    llm = ScriptedLLM(respond)
    queries, run = make_run({"q": [1, 5, 3, 7]})
    out = GroupRankReranker(lm=llm, group_size=20, repeats=2).rerank(queries, run)["q"]
    assert out.ids == ["q-d3", "q-d0", "q-d1", "q-d2"]
    assert out.scores == pytest.approx([0.7, 0.5, 0.5, 0.2], abs=1e-6)
    assert out.model_calls == 2
    assert out.fallbacks == [
        "grouprank repeat 1 group of 4: repaired doubled ']' in key; appended missing '}'; "
        "1 document(s) without a score"
    ]
    assert len(llm.batches) == 1 and len(llm.batches[0]) == 2
    assert llm.gen_kwargs[0] | {"seed": 0} == {"max_new_tokens": 8000, "temperature": 0.3, "top_p": 0.8, "seed": 0}


def test_unparseable_group_scores_zero_and_unscored_documents_recorded():
    # groups of 2 over 5 docs (3 groups); the model fails on the group holding d4: its members score 0
    def respond(messages):
        docs = numbered_docs(messages)
        return "no idea" if any("d4" in t for t in docs.values()) else json_answer(messages)

    rels = [2, 8, 4, 6, 10]
    llm = ScriptedLLM(respond)
    queries, run = make_run({"q": rels})
    out = GroupRankReranker(lm=llm, group_size=2, repeats=1).rerank(queries, run)["q"]
    failed = [set(t.split()[1] for t in numbered_docs(c).values()) for c in llm.prompts]
    failed = next(g for g in failed if "d4" in g)
    expected = {f"q-d{i}": 0.0 if f"d{i}" in failed else r / 10 for i, r in enumerate(rels)}
    assert dict(zip(out.ids, out.scores, strict=True)) == pytest.approx(expected, abs=1e-6)
    assert out.fallbacks == [f"grouprank repeat 0 group of {len(failed)}: no JSON object in output; all scored 0"]
    assert out.model_calls == 3


def test_document_never_scored_gets_zero_and_is_recorded():
    def respond(messages):  # never scores d1
        docs = {i: t for i, t in numbered_docs(messages).items() if "d1 " not in t}
        return json.dumps({f"[{i}]": rel(t) for i, t in docs.items()})

    queries, run = make_run({"q": [1, 5, 3]})
    out = GroupRankReranker(lm=ScriptedLLM(respond), repeats=2).rerank(queries, run)["q"]
    assert out.ids == ["q-d2", "q-d0", "q-d1"]
    assert out.scores == pytest.approx([0.3, 0.1, 0.0], abs=1e-6)
    assert out.fallbacks[-1] == "grouprank: 1 document(s) never scored, given 0"


def test_fusion_with_first_stage_score_hand_computed():
    # one repeat; rerank scores .1 .5 .3 .7; first stage 10 0 0 0 with raw ("none") fusion at 0.6 / 0.4:
    # d0 .06+4=4.06, d1 .3, d2 .18, d3 .42
    queries, run = make_run({"q": [1, 5, 3, 7]}, first_stage=[10.0, 0.0, 0.0, 0.0])
    r = GroupRankReranker(lm=ScriptedLLM(json_answer), repeats=1, fusion="none")
    out = r.rerank(queries, run)["q"]
    assert out.ids == ["q-d0", "q-d3", "q-d1", "q-d2"]
    assert out.scores == pytest.approx([4.06, 0.42, 0.3, 0.18], abs=1e-6)


def test_all_groups_of_all_queries_in_one_call_and_seeded_shuffles():
    def groups_seen(seed):
        llm = ScriptedLLM(json_answer)
        queries, run = make_run({"a": list(range(10)), "b": [3, 1, 2]})
        out = GroupRankReranker(lm=llm, group_size=4, repeats=3, seed=seed).rerank(queries, run)
        assert len(llm.batches) == 1 and len(llm.batches[0]) == 3 * 3 + 3 * 1
        assert out["a"].model_calls == 9 and out["b"].model_calls == 3
        assert out["a"].ids == [f"a-d{i}" for i in range(9, -1, -1)] and out["a"].fallbacks == []
        return [[t.split()[1] for t in numbered_docs(c).values()] for c in llm.prompts]

    assert groups_seen(0) == groups_seen(0)
    assert groups_seen(0) != groups_seen(5)
    first = groups_seen(0)[:3]
    assert sorted(d for g in first for d in g) == sorted(f"d{i}" for i in range(10))  # one repeat = a partition


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    return str(save_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen")))


def test_tiny_qwen_end_to_end(tiny_qwen):
    queries, run = make_run({"a": [1, 5, 3, 7, 2], "b": [3, 1]})
    r = GroupRankReranker(tiny_qwen, group_size=3, repeats=2, max_new_tokens=6, device="cpu")
    out = r.rerank(queries, run)
    for qid in ("a", "b"):
        assert sorted(out[qid].ids) == sorted(run[qid].ids)
        assert any("all scored 0" in f for f in out[qid].fallbacks)
    assert out["a"].model_calls == 4 and out["b"].model_calls == 2
    # every group failed: all scores tie at 0, and the tie-break keeps first-stage order even after a score sort
    assert out["a"].ids == run["a"].ids and out["a"].sorted().ids == run["a"].ids
