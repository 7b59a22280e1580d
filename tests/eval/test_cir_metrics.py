"""CIR metrics against hand-worked examples and against transcriptions of the official computations."""

from __future__ import annotations

import numpy as np
import pytest

from mmrank.errors import DataFormatError
from mmrank.eval.cir import (
    CIRSample,
    circo_average_precision,
    circo_metrics,
    circo_submission,
    cirr_metrics,
    cirr_submission,
    fashioniq_average,
    fashioniq_metrics,
)


def _cirr(qid, ref, target, members, soft=None):
    return CIRSample(qid, ref, "text", target=target, targets=(target,), members=tuple(members), soft=soft)


# --- CIRR ------------------------------------------------------------------------------------------
def test_cirr_recall_and_subset_by_hand():
    # query 1: reference r1 sits at rank 2 and is removed -> [x, a, t1, y, b, c, d, z]
    q1 = _cirr("1", "r1", "t1", ["r1", "a", "t1", "b", "c", "d"])
    # query 2: the target comes right after the reference -> after removal it is first
    q2 = _cirr("2", "r2", "t2", ["r2", "t2", "e", "f", "g", "h"])
    preds = {
        "1": ["x", "r1", "a", "t1", "y", "b", "c", "d", "z"],
        "2": ["r2", "t2", "e", "f", "g", "h", "x"],
    }
    m = cirr_metrics(preds, [q1, q2], ks=(1, 2, 3, 5), subset_ks=(1, 2, 3))
    # q1: target at position 3 after removal; q2: position 1
    assert m["R@1"] == pytest.approx(50.0)
    assert m["R@2"] == pytest.approx(50.0)
    assert m["R@3"] == pytest.approx(100.0)
    # subsets: q1 -> [a, t1, b, c, d] (target 2nd); q2 -> [t2, e, f, g, h] (target 1st)
    assert m["Rsubset@1"] == pytest.approx(50.0)
    assert m["Rsubset@2"] == pytest.approx(100.0)
    assert m["n_queries"] == 2
    assert m["avg"] == pytest.approx((m["R@5"] + m["Rsubset@1"]) / 2)


def test_cirr_soft_recall_by_hand():
    q = _cirr("1", "r", "t", ["r", "t", "u", "v", "a", "b"], soft={"t": 1.0, "u": 0.5, "v": -1.0})
    preds = {"1": ["r", "v", "u", "t", "a", "b"]}
    m = cirr_metrics(preds, [q], ks=(1, 2, 3), subset_ks=(1, 2), soft=True)
    assert m["R@1"] == 0.0  # a negative soft label counts 0
    assert m["R@2"] == pytest.approx(50.0)
    assert m["R@3"] == pytest.approx(100.0)
    hard = cirr_metrics(preds, [q], ks=(1, 2, 3), subset_ks=(1, 2))
    assert hard["R@2"] == 0.0 and hard["R@3"] == 100.0


def _clip4cir_reference(sorted_names, reference_names, target_names, group_members, ks, subset_ks):
    """Transcription of the CLIP4Cir / SEARLE ``compute_cirr_val_metrics`` array computation (numpy only)."""
    sorted_names = np.asarray(sorted_names)
    n, g = sorted_names.shape
    mask = sorted_names != np.repeat(np.asarray(reference_names), g).reshape(n, -1)
    sorted_names = sorted_names[mask].reshape(n, g - 1)
    labels = sorted_names == np.repeat(np.asarray(target_names), g - 1).reshape(n, -1)
    group_members = np.asarray(group_members)
    group_mask = (sorted_names[..., None] == group_members[:, None, :]).sum(-1).astype(bool)
    group_labels = labels[group_mask].reshape(n, -1)
    out = {f"R@{k}": labels[:, :k].sum() / n * 100 for k in ks}
    out.update({f"Rsubset@{k}": group_labels[:, :k].sum() / n * 100 for k in subset_ks})
    return out


def test_cirr_matches_the_official_array_computation():
    rng = np.random.default_rng(0)
    names = [f"dev-{i}-0-img0" for i in range(40)]
    samples, preds, sorted_names = [], {}, []
    for q in range(25):
        members = list(rng.choice(names, 6, replace=False))
        ref, target = members[0], members[int(rng.integers(1, 6))]
        samples.append(_cirr(str(q), ref, target, members))
        perm = list(rng.permutation(names))
        preds[str(q)] = perm
        sorted_names.append(perm)
    ks, sks = (1, 5, 10, 50), (1, 2, 3)
    ours = cirr_metrics(preds, samples, ks=ks, subset_ks=sks)
    ref = _clip4cir_reference(
        sorted_names, [s.reference for s in samples], [s.target for s in samples], [s.members for s in samples], ks, sks
    )
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value), key


def test_cirr_subset_needs_every_member_ranked():
    q = _cirr("7", "r", "t", ["r", "t", "a", "b", "c", "d"])
    with pytest.raises(DataFormatError, match="pairid 7"):
        cirr_metrics({"7": ["t", "a"]}, [q])
    # an explicit subset ranking is enough
    m = cirr_metrics({"7": ["t", "a"]}, [q], subset_predictions={"7": ["a", "t", "b", "c", "d"]})
    assert m["R@1"] == 100.0 and m["Rsubset@1"] == 0.0 and m["Rsubset@2"] == 100.0


def test_cirr_submission_format():
    q = _cirr("12063", "r", "t", ["r", "t", "a", "b", "c", "d"])
    ranking = ["a", "r"] + [f"g{i}" for i in range(60)] + ["t", "b", "c", "d"]
    files = cirr_submission({"12063": ranking}, [q])
    rec, sub = files["recall"], files["recall_subset"]
    assert rec["version"] == "rc2" and rec["metric"] == "recall"
    assert sub["version"] == "rc2" and sub["metric"] == "recall_subset"
    assert len(rec["12063"]) == 50 and "r" not in rec["12063"] and rec["12063"][:2] == ["a", "g0"]
    assert sub["12063"] == ["a", "t", "b"]
    with pytest.raises(DataFormatError, match="12064"):
        cirr_submission({}, [_cirr("12064", "r", "t", ["r", "t"])])


# --- CIRCO -----------------------------------------------------------------------------------------
def test_circo_ap_with_several_ground_truths_by_hand():
    gts = ["a", "b", "c"]
    ranking = ["a", "x", "b", "y", "z", "c", "w"]
    # hits at ranks 1, 3, 6 with precisions 1, 2/3, 3/6
    assert circo_average_precision(ranking, gts, 2) == pytest.approx(1 / 2)  # min(3, 2) = 2
    assert circo_average_precision(ranking, gts, 5) == pytest.approx((1 + 2 / 3) / 3)
    assert circo_average_precision(ranking, gts, 10) == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    s = CIRSample("0", "ref", "t", target="b", targets=tuple(gts), meta={"semantic_aspects": ("addition",)})
    m = circo_metrics({"0": ranking}, [s], ks=(5, 10))
    assert m["mAP@5"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert m["R@5"] == 100.0  # the target b is at rank 3
    assert m["semantic_mAP@10"] == {"addition": pytest.approx(m["mAP@10"])}


def _official_circo_ap(predictions, gt_img_ids, rank):
    """Transcription of miccunifi/CIRCO src/evaluation.py's AP@k (numpy)."""
    predictions = np.array(predictions, dtype=int)
    ap_labels = np.isin(predictions, gt_img_ids)
    precisions = np.cumsum(ap_labels, axis=0) * ap_labels
    precisions = precisions / np.arange(1, ap_labels.shape[0] + 1)
    return float(np.sum(precisions[:rank]) / min(len(gt_img_ids), rank))


def test_circo_matches_the_official_computation():
    rng = np.random.default_rng(1)
    for _ in range(30):
        gts = [int(x) for x in rng.choice(200, int(rng.integers(1, 24)), replace=False)]
        preds = [int(x) for x in rng.permutation(200)[:50]]
        for k in (5, 10, 25, 50):
            ours = circo_average_precision([str(p) for p in preds], [str(g) for g in gts], k)
            assert ours == pytest.approx(_official_circo_ap(preds, gts, k))


def test_circo_rejects_duplicates_and_writes_int_submissions():
    s = CIRSample("0", "9", "t", target="1", targets=("1",))
    with pytest.raises(DataFormatError, match="duplicate"):
        circo_metrics({"0": ["1", "2", "1"]}, [s])
    assert circo_submission({"0": [str(i) for i in range(60)]}, [s]) == {"0": list(range(50))}
    with pytest.raises(DataFormatError, match="query 1"):
        circo_submission({"0": ["1"]}, [s, CIRSample("1", "9", "t")])


# --- FashionIQ ---------------------------------------------------------------------------------------
def test_fashioniq_per_category_and_average_by_hand():
    def cat(name, hits10, hits50, n=4):
        samples = [CIRSample(f"{name}-{i}", "ref", "t", target=f"t{i}", targets=(f"t{i}",)) for i in range(n)]
        preds = {}
        for i, s in enumerate(samples):
            pos = 0 if i < hits10 else 20 if i < hits50 else 70
            ranking = [f"x{j}" for j in range(80)]
            ranking.insert(pos, s.target)
            preds[s.id] = ranking
        return fashioniq_metrics(preds, samples)

    per = {"dress": cat("dress", 2, 3), "shirt": cat("shirt", 1, 1), "toptee": cat("toptee", 0, 4)}
    assert per["dress"] == {"R@10": 50.0, "R@50": 75.0, "n_queries": 4}
    avg = fashioniq_average(per)
    assert avg["avg"]["R@10"] == pytest.approx((50 + 25 + 0) / 3)
    assert avg["avg"]["R@50"] == pytest.approx((75 + 25 + 100) / 3)
    assert avg["avg_all"] == pytest.approx((avg["avg"]["R@10"] + avg["avg"]["R@50"]) / 2)
