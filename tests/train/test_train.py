"""Training (arXiv 2510.14824 objectives) with a tiny Qwen2 built from config: losses against hand computations,
data validation, negative mining, resume and the adapter round trip into the yes-no reranker."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrank.errors import DataFormatError, OptionError
from mmrank.rerank.pointwise import YesNoReranker
from mmrank.retrieve.bm25 import BM25Retriever
from mmrank.train import TrainConfig, contrastive_loss, load_examples, mine_negatives, parse_examples, sft_loss, train
from mmrank.train.trainer import PairScorer, epoch_groups, group_loss
from mmrank.types import Corpus, Item
from tests.tiny_text import save_tiny_qwen

WORDS = ["cat", "dog", "mat", "night", "paris", "france"]


def toy_records() -> list[dict]:
    return [
        {
            "id": w,
            "query": w,
            "positive": f"The {w} is relevant",
            "negatives": [f"The {o} is false" for o in WORDS if o != w],
        }
        for w in WORDS
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_qwen(tmp_path_factory.mktemp("tiny") / "qwen")


def cfg(**kw) -> TrainConfig:
    base = dict(negatives=3, lora_r=4, lora_alpha=8, lora_dropout=0.0, progress=False, max_doc_tokens=32, save_every=2)
    return TrainConfig(**(base | kw))


# ------------------------------------------------------------------ losses
def test_losses_equal_hand_computation_on_fixed_logits() -> None:
    yes, no = 3, 1
    z = torch.zeros(2, 3, 5)
    z[0, :, yes] = torch.tensor([2.0, 0.5, -1.0])
    z[1, :, yes] = torch.tensor([0.0, 1.0, 0.0])
    z[..., no] = torch.tensor([[0.3, 0.1, 0.0], [0.0, -0.5, 2.0]])
    # contrastive: mean over groups of -log softmax(z_yes / t)[0]
    for t in (1.0, 0.5):
        g0 = -(2.0 / t) + math.log(sum(math.exp(v / t) for v in (2.0, 0.5, -1.0)))
        g1 = -(0.0 / t) + math.log(sum(math.exp(v / t) for v in (0.0, 1.0, 0.0)))
        got = contrastive_loss(z, yes_id=yes, temperature=t)
        assert float(got) == pytest.approx((g0 + g1) / 2, rel=1e-6)
    # SFT: per-pair cross-entropy over [z_no, z_yes], label yes for the positive, no for negatives
    flat = z.reshape(6, 5)
    labels = torch.tensor([1, 0, 0, 1, 0, 0])
    hand = []
    for row, lab in zip(flat.tolist(), labels.tolist(), strict=True):
        p_yes = math.exp(row[yes]) / (math.exp(row[yes]) + math.exp(row[no]))
        hand.append(-math.log(p_yes if lab else 1 - p_yes))
    assert float(sft_loss(flat, labels, yes_id=yes, no_id=no)) == pytest.approx(np.mean(hand), rel=1e-6)
    with pytest.raises(ValueError):
        contrastive_loss(z, yes_id=yes, temperature=0)


@pytest.mark.parametrize("objective", ["sft", "contrastive"])
def test_model_loss_equals_hand_computation_from_reranker_logits(tiny: Path, objective: str) -> None:
    """The training forward (with grad) gives the logits the yes-no reranker scores with, and the loss on them."""
    ex = parse_examples(toy_records())
    c = cfg(objective=objective)
    sc = PairScorer(str(tiny), c)
    groups = epoch_groups(ex, 0, c)[:2]
    loss = group_loss(sc, ex, groups, c)
    rr = YesNoReranker(lm=sc.lm, max_doc_tokens=32)
    hand = []
    for i, p, negs in groups:
        pairs = [(ex[i].query, ex[i].positives[p])] + [(ex[i].query, ex[i].negatives[j]) for j in negs]
        z, _ = rr.logits(pairs)  # inference path (prefix KV reuse, no grad)
        zy, zn = z[:, rr.yes_id].double().numpy(), z[:, rr.no_id].double().numpy()
        if objective == "contrastive":
            hand.append(-zy[0] + np.log(np.exp(zy).sum()))
        else:
            py = np.exp(zy) / (np.exp(zy) + np.exp(zn))
            hand += [-np.log(py[0])] + [-np.log(1 - v) for v in py[1:]]
    assert float(loss.detach()) == pytest.approx(float(np.mean(hand)), rel=1e-4, abs=1e-5)


# ------------------------------------------------------------------ data
def test_bad_records_raise_naming_the_record(tmp_path: Path) -> None:
    good = toy_records()[0]
    cases = {
        "no positive": {**good, "positive": None},
        "no negatives": {**good, "negatives": []},
        "neither text nor image": {**good, "negatives": [{"id": "x"}]},
        "no 'query'": {"id": "q9", "positive": "a", "negatives": ["b"]},
        "unknown item field": {**good, "negatives": [{"text": "a", "colour": 1}]},
    }
    for why, rec in cases.items():
        with pytest.raises(DataFormatError, match="record 2") as e:
            parse_examples([toy_records()[1], rec])
        assert why.split()[0] in str(e.value) or "item" in str(e.value), (why, str(e.value))
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataFormatError, match="line 2"):
        load_examples(p)
    with pytest.raises(DataFormatError, match="duplicate"):
        parse_examples([good, good])
    with pytest.raises(DataFormatError, match="no such file"):
        load_examples(tmp_path / "missing.jsonl")
    with pytest.raises(OptionError):
        cfg(objective="listwise").check()


def test_jsonl_and_dataset_like_records_give_the_same_examples(tmp_path: Path) -> None:
    recs = toy_records()
    recs[0]["negatives"].append({"id": "p1", "text": "page text", "page": {"doc_id": "d", "page": 2}, "image": "x.png"})
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    a, b = load_examples(p), load_examples(iter(recs))
    assert [(e.query.text, [x.text for x in e.negatives]) for e in a] == [
        (e.query.text, [x.text for x in e.negatives]) for e in b
    ]
    assert a[0].negatives[-1].page is not None and a[0].negatives[-1].page.page == 2


def test_mine_negatives_is_bm25_top_k_minus_positives() -> None:
    docs = [Item(f"d{i}", text=f"the {w} sat here {i}") for i, w in enumerate(WORDS)]
    bm25 = BM25Retriever().index(Corpus(docs))
    ex = parse_examples(
        [{"id": "q", "query": "cat sat", "positive": {"id": "d0", "text": "the cat sat here 0"}}], need_negatives=False
    )
    mined = mine_negatives(ex, bm25, k=3)
    top = [h.id for h in bm25.retrieve([ex[0].query], k=3)["q"].hits]
    assert [n.id for n in mined[0].negatives] == [d for d in top if d != "d0"]
    with pytest.raises(DataFormatError, match="no negatives"):
        mine_negatives(ex, bm25, k=1)


# ------------------------------------------------------------------ training
def test_resume_reproduces_an_uninterrupted_run(tiny: Path, tmp_path: Path) -> None:
    ex = parse_examples(toy_records())
    c = dict(objective="contrastive", lora_dropout=0.1, batch_size=2, grad_accum=2, epochs=3, lr=1e-2)
    full = train(str(tiny), ex, tmp_path / "full", cfg(**c))
    train(str(tiny), ex, tmp_path / "part", cfg(**c, max_steps=3))
    resumed = train(str(tiny), ex, tmp_path / "part", cfg(**c), resume=True)
    assert full["steps"] == resumed["steps"] == 6
    assert resumed["losses"] == pytest.approx(full["losses"], rel=1e-5)
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "part" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert len(list((tmp_path / "part" / "checkpoints").iterdir())) == 2  # keep_checkpoints


def test_adapter_folder_reloads_in_the_yes_no_reranker(tiny: Path, tmp_path: Path) -> None:
    ex = parse_examples(toy_records())
    out = tmp_path / "sft"
    train(str(tiny), ex, out, cfg(objective="sft", epochs=1, lr=5e-2))
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    trained = YesNoReranker(str(out), max_doc_tokens=32)
    base = YesNoReranker(str(tiny), max_doc_tokens=32)
    pairs = [(ex[0].query, ex[0].positives[0]), (ex[0].query, ex[0].negatives[0])]
    st, _ = trained.score_pairs(pairs)
    sb, _ = base.score_pairs(pairs)
    assert not np.allclose(st, sb)  # the adapter changed the scores
    # independent: the PEFT model built by peft itself (unmerged) gives the same p(yes)
    from peft import PeftModel

    ref = PeftModel.from_pretrained(base.lm.model.__class__.from_pretrained(str(tiny)), str(out)).eval()
    seqs, _ = trained.build(pairs)
    with torch.no_grad():
        z = torch.stack([ref(input_ids=torch.tensor([s])).logits[0, -1] for s in seqs])
    p = torch.softmax(z[:, [trained.no_id, trained.yes_id]].double(), -1)[:, 1].numpy()
    assert st == pytest.approx(p, rel=1e-4)


@pytest.mark.parametrize("objective", ["sft", "contrastive"])
def test_loss_decreases_and_ranking_improves_on_a_toy_task(tmp_path: Path, objective: str) -> None:
    """Positives say "relevant", negatives "false": both objectives learn it (loss down, positive ranked first)."""
    model = save_tiny_qwen(tmp_path / "qwen96", hidden=96)
    ex = parse_examples(toy_records())
    all_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    c = cfg(
        objective=objective, epochs=10, lr=1e-2, lora_r=8, lora_alpha=16, target_modules=all_modules, save_every=100
    )
    out = train(str(model), ex, tmp_path / "out", c)
    losses = out["losses"]
    assert np.mean(losses[-6:]) < 0.9 * np.mean(losses[:6])  # last epoch vs first

    def mrr(path: str) -> float:
        rr = YesNoReranker(path, max_doc_tokens=32, head="sft" if objective == "sft" else "cl")
        got = []
        for e in ex:
            pairs = [(e.query, d) for d in [*e.positives, *e.negatives]]
            s, _ = rr.score_pairs(pairs)
            got.append(1.0 / (1 + int((s[1:] >= s[0]).sum())))
        return float(np.mean(got))

    assert mrr(str(tmp_path / "out")) > mrr(str(model))
