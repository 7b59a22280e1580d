import json

import numpy as np
import pytest

from mmrank.errors import DataFormatError
from mmrank.eval.image import (
    average_precision,
    load_revisitop_gnd,
    loo_metrics,
    loo_metrics_from_ranks,
    revisitop_evaluate,
    revisitop_evaluate_run,
    revisitop_gnd_from_dict,
)
from mmrank.types import Hit, Ranking, Run


def test_average_precision_by_hand():
    # relevant at ranks 1 and 3 of 2 relevant: (1/1 + 2/3) / 2
    assert average_precision([True, False, True, False], 2) == pytest.approx((1 + 2 / 3) / 2)
    # one of 3 relevant never retrieved
    assert average_precision([False, True], 3) == pytest.approx((1 / 2) / 3)


def test_loo_metrics_hand_worked():
    # 1-d "descriptors" on a line: ordering by inner product with unit vectors is by angle
    ang = np.array([0.0, 0.1, 0.5, 1.5, 1.6])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    labels = ["a", "a", "b", "b", "c"]
    m = loo_metrics(x, labels, ks=(1, 2))
    # q0 (a): others by similarity 1,2,3,4 -> relevant {1} at rank 1: AP 1
    # q1 (a): 0 (d=.1), 2 (d=.4), 3, 4 -> AP 1
    # q2 (b): 1 (.4), 0 (.5), 3 (1.0), 4 (1.1) -> relevant 3 at rank 3: AP 1/3
    # q3 (b): 4 (.1), 2 (1.0), 1, 0 -> relevant 2 at rank 2: AP 1/2
    # q4 (c): no other c -> skipped
    assert m["n_queries"] == 4 and m["n_skipped"] == 1
    assert m["mAP"] == pytest.approx((1 + 1 + 1 / 3 + 1 / 2) / 4)
    assert m["P@1"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert m["P@2"] == pytest.approx((0.5 + 0.5 + 0 + 0.5) / 4)


def test_loo_ranks_must_exclude_self():
    with pytest.raises(DataFormatError):
        loo_metrics_from_ranks(np.array([[0, 1], [0, 2], [0, 1]]), ["a", "a", "b"])


def naive_revisitop(ranking, ok, junk, ks):
    """Reference: walk the ranking, skip junk, count positives; trapezoidal AP as in revisitop."""
    pos, rank = [], 0
    for idx in ranking:
        if idx in junk:
            continue
        if idx in ok:
            pos.append(rank)
        rank += 1
    ap, prev_recall, _prev_prec = 0.0, 0.0, 1.0
    for j, r in enumerate(pos):
        recall = (j + 1) / len(ok)
        prec_before = 1.0 if r == 0 else j / r
        prec_at = (j + 1) / (r + 1)
        ap += (recall - prev_recall) * (prec_before + prec_at) / 2
        prev_recall = recall
    pk = []
    for k in ks:
        if not pos:
            pk.append(0.0)
            continue
        kq = min(max(p + 1 for p in pos), k)
        pk.append(sum(1 for p in pos if p + 1 <= kq) / kq)
    return ap, pk


def test_revisitop_matches_naive_reference():
    rng = np.random.default_rng(0)
    n, nq = 40, 5
    gnd = []
    for _ in range(nq):
        perm = rng.permutation(n)
        gnd.append(
            {"easy": perm[:4].tolist(), "hard": perm[4:7].tolist(), "junk": perm[7:10].tolist(), "bbx": [0, 0, 1, 1]}
        )
    gnd.append({"easy": [], "hard": [], "junk": [1]})  # a query without positives is left out
    ranks = np.stack([rng.permutation(n) for _ in range(nq + 1)])
    res = revisitop_evaluate(ranks, gnd, ks=(1, 5, 10))
    setups = {
        "easy": (["easy"], ["junk", "hard"]),
        "medium": (["easy", "hard"], ["junk"]),
        "hard": (["hard"], ["junk", "easy"]),
    }
    for name, (pk_, jk) in setups.items():
        aps, pks = [], []
        for qi in range(nq):
            ok = {i for k in pk_ for i in gnd[qi][k]}
            junk = {i for k in jk for i in gnd[qi][k]}
            ap, pk = naive_revisitop(ranks[qi], ok, junk, (1, 5, 10))
            aps.append(ap)
            pks.append(pk)
        assert res[name]["n_queries"] == nq
        assert res[name]["mAP"] == pytest.approx(100 * np.mean(aps))
        for k, v in zip((1, 5, 10), np.mean(pks, 0), strict=True):
            assert res[name][f"mP@{k}"] == pytest.approx(100 * v)


def test_revisitop_perfect_ranking_is_100():
    gnd = [{"easy": [0], "hard": [1], "junk": [2]}]
    res = revisitop_evaluate(np.array([[1, 2, 0, 3]]), gnd)
    assert res["medium"]["mAP"] == pytest.approx(100.0)
    assert res["hard"]["mAP"] == pytest.approx(100.0)
    assert res["easy"]["mAP"] == pytest.approx(100.0)  # hard image 1 is junk for easy, junk 2 removed


def test_gnd_json_loading(tmp_path):
    raw = {
        "imlist": ["a", "b", "c"],
        "qimlist": ["q"],
        "gnd": [{"easy": [0], "hard": [2], "junk": [1], "bbx": [1, 2, 3, 4]}],
    }
    p = tmp_path / "gnd_roxford5k.json"
    p.write_text(json.dumps(raw))
    g = load_revisitop_gnd(p)
    assert g.imlist == ["a", "b", "c"] and g.gnd[0]["bbx"] == [1.0, 2.0, 3.0, 4.0]
    run = Run([Ranking("q", [Hit("c", 3.0), Hit("b", 2.0), Hit("a", 1.0)])])
    res = revisitop_evaluate_run(run, g)
    assert res["medium"]["mAP"] == pytest.approx(100.0)
    assert res["hard"]["mAP"] == pytest.approx(100.0)
    (tmp_path / "gnd.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(DataFormatError, match="unpickle"):
        load_revisitop_gnd(tmp_path / "gnd.pkl")
    with pytest.raises(DataFormatError, match="outside"):
        revisitop_gnd_from_dict({**raw, "gnd": [{"easy": [5], "hard": [], "junk": []}]})
    with pytest.raises(DataFormatError, match="qimlist"):
        revisitop_gnd_from_dict({"imlist": [], "gnd": []})


def test_revisitop_queries_are_cropped(tmp_path):
    from PIL import Image

    from mmrank.eval.image import revisitop_items, revisitop_queries

    arr = np.zeros((40, 60, 3), dtype=np.uint8)
    arr[10:20, 5:35] = 255
    Image.fromarray(arr).save(tmp_path / "q1.png")
    g = revisitop_gnd_from_dict(
        {"imlist": ["d1"], "qimlist": ["q1"], "gnd": [{"easy": [0], "hard": [], "junk": [], "bbx": [5, 10, 35, 20]}]}
    )
    (q,) = revisitop_queries(g, tmp_path, ext=".png")
    assert q.image.size == (30, 10) and np.asarray(q.image).min() == 255
    assert revisitop_items(g, tmp_path)[0].image == tmp_path / "d1.jpg"
    bad = revisitop_gnd_from_dict(
        {"imlist": ["d1"], "qimlist": ["q1"], "gnd": [{"easy": [0], "hard": [], "junk": [], "bbx": [70, 50, 80, 60]}]}
    )
    with pytest.raises(DataFormatError, match="empty bounding box"):
        revisitop_queries(bad, tmp_path, ext=".png")
