"""Prompts longer than the context: every LLM reranker cuts its documents (never the instructions or the query),
records it, and raises a typed error only when empty documents do not fit (issue 12, item 9)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.errors import ContextLengthError
from mmrank.llm.causal import CausalLM
from mmrank.rerank.e2rank import E2RankReranker
from mmrank.rerank.erank import ERankReranker
from mmrank.rerank.grouprank import GroupRankReranker
from mmrank.rerank.icr import ICRReranker
from mmrank.rerank.listwise import ReasonRankReranker
from mmrank.rerank.pointwise import ProRankReranker, QueryLikelihoodReranker, YesNoReranker
from mmrank.rerank.setwise import SetwiseReranker
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

LONG = " ".join(["the cat sat on the mat and dogs bark at night"] * 40)  # ~440 words
QUERY = "What is the capital of France?"


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> str:
    return str(save_tiny_qwen(tmp_path_factory.mktemp("qwen")))


def lm_of(path: str, max_length: int) -> CausalLM:
    return CausalLM(path, device="cpu", max_length=max_length)


def run_of(n: int = 3, query: str = QUERY) -> Run:
    q = Query("q", text=query)
    return Run(
        [Ranking("q", [Hit(f"d{i}", float(n - i), Item(f"d{i}", text=f"{LONG} {i}")) for i in range(n)], query=q)]
    )


def cut_notes(r: Ranking) -> list[str]:
    return [f for f in r.fallbacks if "fit max_length" in f]


def test_yes_no_cuts_the_document_and_keeps_instruction_and_query(path):
    lm = lm_of(path, 160)
    r = YesNoReranker(lm=lm, max_doc_tokens=None)
    out = r.rerank(None, run_of())["q"]
    assert len(out.ids) == 3
    [note] = cut_notes(out)
    assert note.startswith("yes-no: document truncated to ") and note.endswith("to fit max_length (3/3 docs)")
    seqs, _ = r.build([(Query("q", text=QUERY), Item("d", text=LONG))])
    text = lm.tokenizer.decode(seqs[0])
    assert len(seqs[0]) <= 160
    assert text.startswith("<|im_start|>system\nJudge whether the Document")  # the head survives
    assert QUERY in text and text.endswith("<|im_start|>assistant\n")  # query and answer slot survive
    with pytest.raises(ContextLengthError, match="without any document"):
        YesNoReranker(lm=lm).rerank(None, run_of(query=" ".join(["capital"] * 300)))


def test_query_likelihood_and_erank_fit(path):
    lm = lm_of(path, 120)
    out = QueryLikelihoodReranker(lm=lm, max_doc_tokens=None).rerank(None, run_of())["q"]
    assert cut_notes(out) and len(out.ids) == 3
    er = ERankReranker(lm=lm_of(path, 600), think=False, max_doc_tokens=None)
    out = er.rerank(None, run_of())["q"]
    assert any("document truncated to" in f for f in out.fallbacks)


def test_prorank_official_budget_and_cuts(path):
    r = ProRankReranker(lm=lm_of(path, 2048))
    assert r.pair_max_length == 8192 and r.max_doc_tokens is None  # official max_length, no 512 cap
    small = ProRankReranker(lm=lm_of(path, 2048), max_length=64)
    out = small.rerank(None, run_of(query=" ".join(["capital"] * 80)))["q"]
    assert any("query truncated to 48 tokens" in f for f in out.fallbacks)  # 3/4 of 64
    assert any("document truncated to" in f for f in out.fallbacks)
    ids, note = small.input_ids(small.query_ids(QUERY)[0], LONG)
    text = small.lm.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are Qwen") and text.endswith("<|im_start|>assistant\n")
    assert "Relevance:" in text and QUERY in text and note is not None


def test_generative_defaults_fit_their_budget():
    assert SetwiseReranker(model="x")._lm_kw["max_length"] == 32768  # 20 x 512-token documents + 2048 new tokens
    assert E2RankReranker.__init__.__kwdefaults__["max_length"] == 32768
    assert ERankReranker.__init__.__kwdefaults__["max_length"] == 8192  # 2048 + 2048 + template + 1024


def test_setwise_and_grouprank_cut_documents(path):
    lm = lm_of(path, 700)
    s = SetwiseReranker(lm=lm, num_child=2, k=1, max_new_tokens=4, max_doc_tokens=2000)
    out = s.rerank(None, run_of())["q"]
    assert any("documents cut to fit max_length" in f for f in out.fallbacks)
    g = GroupRankReranker(lm=lm_of(path, 1800), group_size=3, repeats=1, max_new_tokens=4)
    out = g.rerank(None, run_of())["q"]
    assert any("documents cut to fit max_length in 1 group" in f for f in out.fallbacks)
    with pytest.raises(ContextLengthError, match="empty documents"):
        GroupRankReranker(lm=lm_of(path, 1000), group_size=3, repeats=1, max_new_tokens=4).rerank(None, run_of())


def test_reasonrank_window_raises_only_when_empty_passages_do_not_fit(path):
    with pytest.raises(ContextLengthError, match="empty passages"):
        ReasonRankReranker(lm=lm_of(path, 500), window=3, step=1, max_new_tokens=100).rerank(None, run_of())


def test_e2rank_cuts_the_documents_of_its_pseudo_query_not_its_head(path):
    lm = lm_of(path, 400)
    r = E2RankReranker(lm=lm)
    out = r.rerank(None, run_of())["q"]
    notes = " ".join(out.fallbacks)
    assert "pseudo-query prompt documents cut to" in notes and "document(s) cut to fit max_length" in notes
    top = [h.item for h in run_of()["q"].hits]
    text = r.pseudo_query_text(QUERY, top, 5)  # what the cut keeps: instruction first, query last
    assert "rerank the documents that answer the query" in text and f"Search Query: {QUERY}" in text


def test_icr_cuts_documents_in_words(path):
    lm = lm_of(path, 700)
    out = ICRReranker(lm=lm).rerank(None, run_of())["q"]
    [note] = cut_notes(out)
    assert note.startswith("icr: documents cut to ") and note.endswith(" words to fit max_length")
    with pytest.raises(ContextLengthError, match="even with empty documents"):
        ICRReranker(lm=lm_of(path, 60)).rerank(None, run_of())
