"""Pointwise rerankers: prompts against the papers' templates, scores against independent computations."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank import registry
from mmrank.fusion import interpolate
from mmrank.llm.causal import CausalLM
from mmrank.rerank.crossencoder import CrossEncoderReranker
from mmrank.rerank.monot5 import MonoT5Reranker
from mmrank.rerank.pointwise import ProRankReranker, QueryLikelihoodReranker, YesNoReranker
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_cross_encoder, save_tiny_qwen, save_tiny_t5

torch.set_num_threads(1)

DOCS = ["The cat sat on the mat.", "Paris is the capital of France.", "Dogs bark at night.", "Machine learning ranks"]
QUERIES = {"q1": "What is the capital of France?", "q2": "How do dogs communicate?"}


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory) -> str:
    return str(save_tiny_qwen(tmp_path_factory.mktemp("qwen")))


@pytest.fixture(scope="module")
def lm(qwen_dir) -> CausalLM:
    return CausalLM(qwen_dir, device="cpu", batch_size=3)


def make_run() -> tuple[list[Query], Run]:
    queries = [Query(k, text=v) for k, v in QUERIES.items()]
    rankings = []
    for q in queries:
        hits = [Hit(f"d{i}", float(10 - i), Item(f"d{i}", text=t)) for i, t in enumerate(DOCS)]
        rankings.append(Ranking(q.id, hits))
    return queries, Run(rankings)


def last_logits(lm: CausalLM, text: str) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(torch.tensor([lm.encode(text)])).logits[0, -1].double()


# ------------------------------------------------------------------------------------------- yes / no
def test_yes_no_prompt_matches_template(lm):
    r = YesNoReranker(lm=lm)
    assert r.render("QQ", "DD") == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
        'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a '
        "web search query, retrieve relevant passages that answer the query\n<Query>: QQ\n<Document>: DD<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("reuse_prefix", [False, True])
def test_yes_no_sft_head_is_softmax_over_no_yes(lm, reuse_prefix):
    queries, run = make_run()
    r = YesNoReranker(lm=lm, reuse_prefix=reuse_prefix)
    out = r.rerank(queries, run)
    yes, no = lm.tokenizer.convert_tokens_to_ids("yes"), lm.tokenizer.convert_tokens_to_ids("no")
    for q in queries:
        got = {h.id: h.score for h in out[q.id].hits}
        for i, d in enumerate(DOCS):
            z = last_logits(lm, r.render(q.text, d))
            ref = math.exp(z[yes]) / (math.exp(z[yes]) + math.exp(z[no]))
            assert got[f"d{i}"] == pytest.approx(ref, abs=1e-5)
        assert out[q.id].scores == sorted(out[q.id].scores, reverse=True)
        assert out[q.id].stage == "yes-no" and out[q.id].model_calls > 0


def test_yes_no_contrastive_head_and_fusion(lm):
    queries, run = make_run()
    cl = YesNoReranker(lm=lm, head="cl").rerank(queries, run)
    yes = lm.tokenizer.convert_tokens_to_ids("yes")
    r = YesNoReranker(lm=lm, head="cl")
    for h in cl["q1"].hits:
        ref = float(last_logits(lm, r.render(QUERIES["q1"], DOCS[int(h.id[1:])]))[yes])
        assert h.score == pytest.approx(ref, abs=1e-4)
    fused = YesNoReranker(lm=lm, head="cl", fusion="zscore", fusion_weight=0.6).rerank(queries, run)
    raw = {h.id: h.score for h in cl["q1"].hits}
    ids = [f"d{i}" for i in range(len(DOCS))]
    ref = interpolate([raw[i] for i in ids], [10.0 - k for k in range(len(DOCS))], 0.6, "zscore")
    got = {h.id: h.score for h in fused["q1"].hits}
    np.testing.assert_allclose([got[i] for i in ids], ref, atol=1e-6)
    with pytest.raises(ValueError):
        YesNoReranker(lm=lm, head="bad")


def test_top_k_keeps_tail_and_determinism(lm):
    queries, run = make_run()
    r = YesNoReranker(lm=lm)
    a, b = r.rerank(queries, run, top_k=2), r.rerank(queries, run, top_k=2)
    assert a["q1"].ids == b["q1"].ids
    assert set(a["q1"].ids[:2]) == {"d0", "d1"} and a["q1"].ids[2:] == ["d2", "d3"]


# ------------------------------------------------------------------------------------------- ProRank
def test_prorank_prompt_is_the_raw_mxbai_layout(lm):
    r = ProRankReranker(lm=lm)
    task = (
        "You are a search relevance expert who evaluates how well documents match search queries. For each "
        "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "
        "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
    )
    head = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    assert r.render("QQ", "DD") == (
        head + "<|im_start|>user\nquery: QQ\ndocument: DD\n" + task + "<|im_end|>\n<|im_start|>assistant\n"
    )
    r2 = ProRankReranker(lm=lm, instruction="Find code")
    assert "<|im_start|>user\ninstruction: Find code\nquery: QQ\n" in r2.render("QQ", "DD")


def test_prorank_score_and_sigmoid(lm):
    r = ProRankReranker(lm=lm, reuse_prefix=False)
    rn = ProRankReranker(lm=lm, normalize=True, est_max=9)
    one, zero = lm.tokenizer.convert_tokens_to_ids("1"), lm.tokenizer.convert_tokens_to_ids("0")
    pairs = [(Query("q", text=QUERIES["q1"]), Item(str(i), text=d)) for i, d in enumerate(DOCS)]
    s, calls = r.score_pairs(pairs)
    sn, _ = rn.score_pairs(pairs)
    assert calls == 2  # 4 pairs, batch 3
    for i, d in enumerate(DOCS):
        z = last_logits(lm, r.render(QUERIES["q1"], d))
        assert s[i] == pytest.approx(float(z[one] - z[zero]), abs=1e-4)
        assert sn[i] == pytest.approx(1 / (1 + math.exp(-(s[i] - 4.5))), abs=1e-5)


# ------------------------------------------------------------------------------------------- query likelihood
def test_query_likelihood_is_mean_log_prob_of_the_query(lm):
    r = QueryLikelihoodReranker(lm=lm)
    rs = QueryLikelihoodReranker(lm=lm, reduce="sum")
    prompt = r.render("ignored", "DD")
    assert prompt.endswith(
        "<|im_start|>user\nPassage: DD. Please write a question based on this passage.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    pairs = [(Query("q", text=QUERIES["q1"]), Item(str(i), text=d)) for i, d in enumerate(DOCS)]
    s, _ = r.score_pairs(pairs)
    ssum, _ = rs.score_pairs(pairs)
    for i, d in enumerate(DOCS):
        p, c = lm.encode(r.render("", d)), lm.encode(QUERIES["q1"])
        with torch.no_grad():
            lp = torch.log_softmax(lm.model(torch.tensor([p + c])).logits[0].double(), -1)
        toks = [float(lp[len(p) - 1 + t, tok]) for t, tok in enumerate(c)]
        assert s[i] == pytest.approx(np.mean(toks), abs=1e-5)
        assert ssum[i] == pytest.approx(np.sum(toks), abs=1e-4)


# ------------------------------------------------------------------------------------------- cross-encoder / monoT5
def test_cross_encoder_scores_equal_per_pair_logits(tmp_path):
    path = str(save_tiny_cross_encoder(tmp_path / "ce"))
    queries, run = make_run()
    r = CrossEncoderReranker(path, device="cpu", batch_size=3)
    out = r.rerank(queries, run)
    tok, model = r.lm.tokenizer, r.lm.model
    for q in queries:
        for h in out[q.id].hits:
            with torch.no_grad():
                ref = float(model(**tok(q.text, h.item.text, return_tensors="pt")).logits[0, 0])
            assert h.score == pytest.approx(ref, abs=1e-5)
    assert r.lm.calls == 3  # 8 pairs, batch 3
    assert all(out[q.id].model_calls >= 1 for q in queries)


def test_monot5_true_false_log_softmax(tmp_path):
    path = str(save_tiny_t5(tmp_path / "t5"))
    r = MonoT5Reranker(path, device="cpu")
    assert r.render("q", "d") == "Query: q Document: d Relevant:"
    m, tok = r.lm.model, r.lm.tokenizer
    t_id, f_id = tok.convert_tokens_to_ids("\u2581true"), tok.convert_tokens_to_ids("\u2581false")
    res = r.rank(QUERIES["q1"], DOCS)
    for h in res.hits:
        enc = tok(f"Query: {QUERIES['q1']} Document: {DOCS[int(h.id)]} Relevant:", return_tensors="pt")
        with torch.no_grad():
            z = m(**enc, decoder_input_ids=torch.tensor([[r.lm.decoder_start]])).logits[0, 0].double()
        ref = float(z[t_id] - torch.logsumexp(torch.stack([z[t_id], z[f_id]]), 0))
        assert h.score == pytest.approx(ref, abs=1e-5)


# ------------------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", ["yes-no", "prorank", "query-likelihood", "erank"])
def test_registry_factories_load_a_local_directory(qwen_dir, name):
    r = registry.reranker(name, model=qwen_dir, device="cpu")
    res = r.rank("capital of France", DOCS[:2])
    assert sorted(res.ids) == ["0", "1"]
    assert res.stage == name


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(("name", "options"), [("prorank", []), ("icr", ["max_doc_words=50"]), ("e2rank", [])])
def test_cli_rerank_with_a_local_model(qwen_dir, tmp_path, name, options):
    import json

    from mmrank.cli.main import main
    from mmrank.io.trec import read_trec_run

    cand = tmp_path / "cand.json"
    cand.write_text(
        json.dumps(
            [
                {
                    "query": q,
                    "hits": [
                        {"qid": qid, "docid": f"d{i}", "content": d, "score": 9.0 - i} for i, d in enumerate(DOCS)
                    ],
                }
                for qid, q in QUERIES.items()
            ]
        )
    )
    out = tmp_path / "out.trec"
    opts = [x for o in ["device=cpu", *options] for x in ("--option", o)]
    rc = main(
        [
            "rerank",
            "--candidates",
            str(cand),
            "--reranker",
            name,
            "--model",
            qwen_dir,
            "--top-k",
            "3",
            "--out",
            str(out),
            *opts,
        ]
    )
    assert rc == 0
    run = read_trec_run(out)
    assert sorted(run) == ["q1", "q2"]
    assert run["q1"].ids[3] == "d3" and sorted(run["q1"].ids[:3]) == ["d0", "d1", "d2"]
