"""E2Rank: pseudo-query prompt against a hand-built one, cosine scores against a naive last-token pooling."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.causal import CausalLM
from mmrank.rerank.e2rank import E2RankReranker
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

DOCS = ["The cat  sat on\nthe mat.", "Paris is the capital of France.", "Dogs bark at night.", "Machine learning"]
QUERY = "What is the capital of France?"


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> CausalLM:
    return CausalLM(str(save_tiny_qwen(tmp_path_factory.mktemp("qwen"))), device="cpu", batch_size=3)


def make_run(n: int = 4) -> Run:
    hits = [Hit(f"d{i}", 10.0 - i, Item(f"d{i}", text=DOCS[i])) for i in range(n)]
    return Run([Ranking("q", hits)])


def naive_embedding(lm: CausalLM, text: str) -> np.ndarray:
    with torch.no_grad():
        h = lm.model(torch.tensor([lm.encode(text)]), output_hidden_states=True).hidden_states[-1][0, -1]
    v = h.double().numpy()
    return v / np.linalg.norm(v)


def test_pseudo_query_prompt_equals_hand_built(lm):
    r = E2RankReranker(lm=lm, num_input_docs=3)
    items = [Item(f"d{i}", text=d) for i, d in enumerate(DOCS[:3])]
    expected = (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nGiven a web search query and some relevant documents, rerank the documents that answer "
        "the query:\nDocuments:\n[1] The cat sat on the mat.\n[2] Paris is the capital of France.\n"
        "[3] Dogs bark at night.\nSearch Query: What is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert r.pseudo_query_text(QUERY, items) == expected
    assert r.document_text(items[0]) == "The cat sat on the mat.<|endoftext|>"
    assert r.query_only_text("q") == (
        "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:q<|endoftext|>"
    )
    cut = E2RankReranker(lm=lm, doc_words=2, prompt_doc_words=1)
    assert cut.document_text(items[1]) == "Paris is<|endoftext|>"
    assert "[1] The\n[2] Paris\n" in cut.pseudo_query_text(QUERY, items[:2])


@pytest.mark.parametrize("mode", ["listwise", "query"])
def test_scores_are_cosines_of_last_token_states(lm, mode):
    r = E2RankReranker(lm=lm, num_input_docs=2, mode=mode)
    out = r.rerank([Query("q", text=QUERY)], make_run())["q"]
    items = [Item(f"d{i}", text=d) for i, d in enumerate(DOCS)]
    qtext = r.pseudo_query_text(QUERY, items[:2]) if mode == "listwise" else r.query_only_text(QUERY)
    qv = naive_embedding(lm, qtext)
    ref = {f"d{i}": float(naive_embedding(lm, r.document_text(it)) @ qv) for i, it in enumerate(items)}
    assert {h.id: h.score for h in out.hits} == pytest.approx(ref, abs=1e-5)
    assert out.ids == sorted(ref, key=lambda k: -ref[k])
    assert out.model_calls >= 2 and out.stage == "e2rank"


def test_fusion_and_bad_mode(lm):
    run = make_run()
    plain = E2RankReranker(lm=lm).rerank([Query("q", text=QUERY)], run)["q"]
    fused = E2RankReranker(lm=lm, fusion="minmax", fusion_weight=1.0).rerank([Query("q", text=QUERY)], run)["q"]
    assert fused.ids == plain.ids  # weight 1 on the reranker: min-max is monotone
    assert max(fused.scores) == pytest.approx(1.0) and min(fused.scores) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        E2RankReranker(lm=lm, mode="pairwise")  # type: ignore[arg-type]


def test_minilm_encoder_side_and_truncation_fallback(minilm):
    r = E2RankReranker(encoder=minilm, num_input_docs=3)
    items = [Item(f"d{i}", text=d) for i, d in enumerate(DOCS[:3])]
    text = r.pseudo_query_text(QUERY, items)
    assert text.startswith("Given a web search query") and "<|im_start|>" not in text
    assert r.document_text(items[0]) == "The cat sat on the mat."  # no EOS marker for a mean-pooling encoder
    assert r.query_only_text("q") == "q"  # E2Rank's instruct template belongs to its checkpoints
    out = r.rerank([Query("q", text=QUERY)], make_run())["q"]
    qv = minilm.encode_queries([Query("x", text=text)])[0]
    dv = minilm.encode_items([Item(f"d{i}", text=" ".join(d.split())) for i, d in enumerate(DOCS)])
    assert {h.id: h.score for h in out.hits} == pytest.approx({f"d{i}": float(dv[i] @ qv) for i in range(4)}, abs=1e-5)
    assert out.fallbacks == []
    long_run = Run([Ranking("q", [Hit(f"d{i}", 1.0, Item(f"d{i}", text="word " * 300)) for i in range(3)])])
    out = r.rerank([Query("q", text=QUERY)], long_run)["q"]
    assert out.fallbacks == ["e2rank: listwise query text longer than the embedding window, truncated"]
