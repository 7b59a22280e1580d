"""Parity with published numbers on the real data beside the checkout (skipped when it is absent)."""

from __future__ import annotations

import re
import warnings

import pytest

from mmrank.eval import evaluate
from mmrank.io import load_corpus, load_qrels, load_queries, load_run
from mmrank.retrieve.bm25 import BM25Retriever


def test_dl19_first_stages_match_source(shared_data):
    root = shared_data / "trec-dl"
    ref = dict(re.findall(r"(BM25\+RM3|BM25|SPLADE\+\+ED|TAS-B|ada2) (0\.\d{4})", (root / "SOURCE.txt").read_text()))
    folders = {
        "BM25": "BM25",
        "BM25+RM3": "BM25_RM3",
        "SPLADE++ED": "SPLADE_P_P_ENSEMBLE_DISTIL",
        "TAS-B": "D_BERT_KD_TASB",
        "ada2": "OPEN_AI_ADA2",
    }
    qrels = load_qrels(root / "qrels" / "qrels.dl19-passage.txt")
    assert len(ref) == 5
    for name, folder in folders.items():
        run = load_run(root / "first_stage" / folder / "trec_results_dl19_top100.txt")
        assert round(evaluate(run, qrels, ["ndcg@10"])["ndcg@10"], 4) == float(ref[name]), name
        js = load_run(root / "first_stage" / folder / "retrieve_results_dl19_top100.json")
        assert evaluate(js, qrels, ["ndcg@10"]) == evaluate(run, qrels, ["ndcg@10"])


@pytest.mark.parametrize(
    "name,ndcg,map_", [("cranfield", 0.352, 0.288), ("cisi", 0.373, 0.207), ("medline", 0.671, 0.520)]
)
def test_bm25_classic_reference(shared_data, name, ndcg, map_):
    root = shared_data / "classic" / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        corpus = load_corpus(root)
    run = BM25Retriever().index(corpus).retrieve(load_queries(root), k=1000)
    m = evaluate(run, load_qrels(root), ["ndcg@10", "map"])
    assert abs(m["ndcg@10"] - ndcg) < 0.01 and abs(m["map"] - map_) < 0.01
