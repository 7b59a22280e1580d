"""ICR: prompt layout, attention aggregation against a naive loop over full attention maps, sliding windows."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.causal import CausalLM
from mmrank.rerank.icr import ICRReranker, aggregate
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

DOCS = ["The cat sat on the mat.", "Paris is the capital of France.", "Dogs bark at night.", "What is machine learning"]
QUERY = "What is the capital of France?"
IE = "Please find information that are relevant to the following query in the paragraphs above."


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> CausalLM:
    return CausalLM(str(save_tiny_qwen(tmp_path_factory.mktemp("qwen"), layers=3)), device="cpu")


def test_prompt_layout_query_last_best_document_last(lm):
    r = ICRReranker(lm=lm)
    ctx_docs = list(reversed(DOCS))  # reverse_doc_order: the retriever's best document sits next to the query
    inp = r.build(QUERY, ctx_docs)
    system = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    expected = (
        system
        + "<|im_start|>user\n Here are some paragraphs:"
        + "".join(f"\n\n[{i}] {d}" for i, d in enumerate(ctx_docs, start=1))
        + "\n\n"
        + IE
        + "\n\nQuery: "
        + QUERY
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert lm.tokenizer.decode(inp.context + inp.query_span) == expected
    assert lm.tokenizer.decode(inp.calibration_span) == IE + "\n\nQuery: N/A<|im_end|>\n<|im_start|>assistant\n"
    for i, (s, e) in enumerate(inp.doc_spans, start=1):
        assert lm.tokenizer.decode(inp.context[s:e]) == f"[{i}] {ctx_docs[i - 1]}"


def naive_token_weights(lm: CausalLM, ids: list[int], q_start: int, last_only: bool) -> list[float]:
    """Full forward with eager attention, no cache; loops over layers, heads, query rows and keys."""
    impl = lm.model.config._attn_implementation
    lm.model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            att = lm.model(torch.tensor([ids]), output_attentions=True).attentions
    finally:
        lm.model.set_attn_implementation(impl)
    rows = [len(ids) - 1] if last_only else list(range(q_start, len(ids)))
    weights = []
    for k in range(q_start):
        total = 0.0
        for layer in att:
            for h in range(layer.shape[1]):
                total += sum(float(layer[0, h, j, k]) for j in rows) / len(rows)
        weights.append(total)
    return weights


def naive_icr(lm, r, strategy):
    inp = r.build(QUERY, DOCS)
    n = len(inp.context)
    last = strategy in ("attention_sorting", "NA_calibration_no_agg")
    a_q = naive_token_weights(lm, inp.context + inp.query_span, n, last)
    a_na = naive_token_weights(lm, inp.context + inp.calibration_span, n, last)
    scores = []
    for s, e in inp.doc_spans:
        if strategy in ("query_last", "attention_sorting"):
            scores.append(sum(a_q[s:e]))
            continue
        c = [a_q[k] - a_na[k] for k in range(s, e)]
        if strategy == "NA_calibration_no_agg":
            scores.append(sum(c))
            continue
        thr = statistics.mean(c) - 2 * statistics.stdev(c)
        scores.append(sum(x for x in c if x > thr))
    return scores


@pytest.mark.parametrize(
    "strategy", ["masked_NA_calibration", "query_last", "attention_sorting", "NA_calibration_no_agg"]
)
def test_scores_equal_naive_loop_over_full_attention_maps(lm, strategy):
    r = ICRReranker(lm=lm, scoring_strategy=strategy)
    before = lm.calls
    got = r.score_docs(QUERY, DOCS)
    calibrated = strategy in ("masked_NA_calibration", "NA_calibration_no_agg")
    assert lm.calls - before == (3 if calibrated else 2)  # documents once, then each query span on their cache
    assert lm.model.config._attn_implementation == "sdpa"  # restored after reading attention weights
    ref = naive_icr(lm, r, strategy)
    assert got == pytest.approx(ref, abs=1e-9, rel=1e-6)


def test_masked_aggregation_hand_worked():
    # one document of 5 tokens; calibrated c = [1, 1, 1, 1, -9]: mean -1, stdev sqrt(20) -> threshold -9.94: all kept
    a_q = torch.tensor([1.0, 1.0, 1.0, 1.0, -9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -50.0], dtype=torch.float64)
    a_na = torch.zeros(12, dtype=torch.float64)
    assert aggregate(a_q, a_na, [(0, 5)], "masked_NA_calibration") == pytest.approx([-5.0])
    # seven tokens [0]*6 + [-70] ... with outlier: c = [0,0,0,0,0,0,-70]: mean -10, stdev 26.46 -> thr -62.9: dropped
    a_q2 = torch.tensor([0.0] * 6 + [-70.0], dtype=torch.float64)
    assert aggregate(a_q2, torch.zeros(7, dtype=torch.float64), [(0, 7)], "masked_NA_calibration") == [0.0]
    assert aggregate(a_q2, torch.zeros(7, dtype=torch.float64), [(0, 7)], "NA_calibration_no_agg") == [-70.0]


class OracleICR(ICRReranker):
    """Scores each document by the relevance written in it, and records the context orders it was given."""

    seen: list[list[str]]

    def score_docs(self, query, docs):
        self.seen.append(list(docs))
        self.lm.calls += 3
        return [float(d.split("rel")[1]) for d in docs]


def test_sliding_window_hand_worked_seven_documents(lm):
    rel = [1, 5, 3, 7, 2, 6, 4]
    hits = [Hit(f"d{i}", 10.0 - i, Item(f"d{i}", text=f"doc rel{r}")) for i, r in enumerate(rel)]
    run = Run([Ranking("q", hits)])
    r = OracleICR(lm=lm, window=4, stride=2)
    r.seen = []
    out = r.rerank([Query("q", text="x")], run)["q"]
    # windows back to front over positions [3,7), [1,5), [0,3):
    #   [d3 d4 d5 d6] -> d3 d5 d6 d4 ; [d1 d2 d3 d5] -> d3 d5 d1 d2 ; [d0 d3 d5] -> d3 d5 d0
    assert out.ids == ["d3", "d5", "d0", "d1", "d2", "d6", "d4"]
    assert out.model_calls == 9
    # best-first within each window is reversed into the context (best document last, next to the query)
    assert r.seen[0] == ["doc rel4", "doc rel6", "doc rel2", "doc rel7"]
    assert len(r.seen) == 3


def test_single_context_scores_fusion_and_validation(lm):
    hits = [Hit(f"d{i}", 4.0 - i, Item(f"d{i}", text=t)) for i, t in enumerate(DOCS)]
    run = Run([Ranking("q", hits)])
    r = ICRReranker(lm=lm)
    out = r.rerank([Query("q", text=QUERY)], run)["q"]
    direct = r.score_docs(QUERY, list(reversed(DOCS)))[::-1]
    assert {h.id: h.score for h in out.hits} == pytest.approx({f"d{i}": s for i, s in enumerate(direct)})
    assert out.model_calls == 3
    fused = ICRReranker(lm=lm, fusion="minmax", fusion_weight=0.5).rerank([Query("q", text=QUERY)], run)["q"]
    # independent computation: 0.5 * minmax(ICR) + 0.5 * minmax(first stage), ordered by it
    icr = np.array(direct)
    first = np.array([h.score for h in hits])
    want = 0.5 * (icr - icr.min()) / np.ptp(icr) + 0.5 * (first - first.min()) / np.ptp(first)
    assert fused.ids == [f"d{i}" for i in np.argsort(-want, kind="stable")]
    assert [h.score for h in fused.hits] == pytest.approx(sorted(want, reverse=True))
    with pytest.raises(ValueError):
        ICRReranker(lm=lm, scoring_strategy="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ICRReranker(lm=lm, window=4, stride=4)


def test_icr_never_switches_the_shared_model(lm, monkeypatch):
    called = []
    monkeypatch.setattr(lm.model, "set_attn_implementation", lambda *a, **k: called.append(a))
    ICRReranker(lm=lm).score_docs(QUERY, DOCS)
    assert called == []


def test_sliding_window_honours_fusion_and_keeps_last_window_scores(lm):
    rel = [1, 5, 3, 7, 2, 6, 4]
    hits = [Hit(f"d{i}", 10.0 - i, Item(f"d{i}", text=f"doc rel{r}")) for i, r in enumerate(rel)]
    jobs = [(Query("q", text="x"), hits)]
    plain = OracleICR(lm=lm, window=4, stride=2)
    plain.seen = []
    [oc] = plain.decide(jobs)
    assert oc.order == [3, 5, 0, 1, 2, 6, 4]
    # every document keeps the score of the last window it was in (official sorted_doc_scores)
    assert oc.scores == [1.0, 5.0, 3.0, 7.0, 2.0, 6.0, 4.0]
    out = plain.rerank([Query("q", text="x")], Run([Ranking("q", hits)]))["q"]
    assert out.scores[:3] == [7.0, 6.0, 1.0] and all(a > b for a, b in zip(out.scores, out.scores[1:], strict=False))
    # fusion weight 0: every window is ordered by the first-stage score alone -> first-stage order
    first = OracleICR(lm=lm, window=4, stride=2, fusion="minmax", fusion_weight=0.0)
    first.seen = []
    [oc] = first.decide(jobs)
    assert oc.order == list(range(7))
    # weight 0.5: windows decide on the fused scores, which are kept
    half = OracleICR(lm=lm, window=4, stride=2, fusion="minmax", fusion_weight=0.5)
    half.seen = []
    [oc] = half.decide(jobs)
    assert oc.scores is not None and oc.scores != [1.0, 5.0, 3.0, 7.0, 2.0, 6.0, 4.0]
    assert oc.order != [3, 5, 0, 1, 2, 6, 4]


def test_llama3_prompt_layout_is_the_official_one(tmp_path):
    from tests.tiny_text import save_tiny_llama

    llm = CausalLM(str(save_tiny_llama(tmp_path / "tiny-llama-3.1")), device="cpu")
    r = ICRReranker(lm=llm)
    assert r.prompt_style == "llama-3" and r.sep == " \n\n"
    inp = r.build(QUERY, DOCS[:2])
    assert inp.context[0] == llm.tokenizer.bos_token_id
    expected = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|> Here are some paragraphs:"
        + "".join(f" \n\n[{i}] {d}" for i, d in enumerate(DOCS[:2], start=1))
        + " \n\n"
        + IE
        + " \n\nQuery: "
        + QUERY
        + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
    )
    assert llm.tokenizer.decode(inp.context + inp.query_span) == expected
    assert ICRReranker(lm=llm, prompt_style="chat").sep == "\n\n"
