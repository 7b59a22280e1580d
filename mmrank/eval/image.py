"""Image-retrieval evaluation protocols.

* Class-level retrieval, leave-one-out: every image queries all the others; relevant = same label; mAP
  (non-interpolated AP) and P@k. Queries whose class has no other image are left out and counted.
* Revisited Oxford / Paris (Radenović et al., "Revisiting Oxford and Paris", CVPR 2018, arXiv 1803.11285):
  Easy / Medium / Hard mAP and mP@k with junk images removed from the ranking, computed like the official
  ``revisitop`` ``compute_map`` (AP by trapezoids of the precision-recall curve; mP@k with
  ``k' = min(k, position of the last retrieved positive)``).

The official ground truth ``gnd_roxford5k.pkl`` / ``gnd_rparis6k.pkl`` is a pickle; mmrank never unpickles files.
Convert it once into JSON (see ``datasets/roxford-rparis.md``) with keys ``imlist``, ``qimlist`` and ``gnd`` (a
list, one entry per query, of ``{"easy": [...], "hard": [...], "junk": [...], "bbx": [x1, y1, x2, y2]}`` with
0-based indices into ``imlist``) and load it with :func:`load_revisitop_gnd`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError
from mmrank.types import Item, Query, Run, load_image


# --- class-level retrieval -----------------------------------------------------------------------
def average_precision(relevant: Sequence[bool] | np.ndarray, n_relevant: int) -> float:
    """Non-interpolated AP of one ranked list: mean over the relevant items of the precision at their rank."""
    rel = np.asarray(relevant, dtype=bool)
    if n_relevant <= 0:
        raise ValueError("AP needs at least one relevant item")
    hits = np.flatnonzero(rel)
    return float(np.sum((np.arange(len(hits)) + 1) / (hits + 1)) / n_relevant)


def loo_metrics_from_ranks(ranks: np.ndarray, labels: Sequence[Any], ks: Sequence[int] = (1, 10)) -> dict[str, Any]:
    """Leave-one-out class-level metrics from ``ranks[i]`` = database indices for query ``i``, best first,
    *without* ``i`` itself (rows may be truncated). Returns ``{"mAP", "P@k"..., "n_queries", "n_skipped",
    "ap"}`` where ``ap`` is per query (NaN for skipped queries)."""
    lab = np.asarray([str(x) for x in labels])
    ranks = np.asarray(ranks)
    n = len(lab)
    if ranks.shape[0] != n:
        raise DataFormatError(f"ranks has {ranks.shape[0]} rows for {n} labelled images")
    if np.any(ranks == np.arange(n)[:, None]):
        raise DataFormatError("leave-one-out ranks must not contain the query itself")
    counts = {c: int(v) for c, v in zip(*np.unique(lab, return_counts=True), strict=True)}
    ap = np.full(n, np.nan)
    pk = {k: np.full(n, np.nan) for k in ks}
    for i in range(n):
        n_rel = counts[lab[i]] - 1
        if n_rel == 0:
            continue
        rel = lab[ranks[i]] == lab[i]
        ap[i] = average_precision(rel, n_rel)
        for k in ks:
            pk[k][i] = rel[:k].sum() / k
    ok = ~np.isnan(ap)
    out: dict[str, Any] = {"mAP": float(ap[ok].mean()) if ok.any() else float("nan")}
    for k in ks:
        out[f"P@{k}"] = float(pk[k][ok].mean()) if ok.any() else float("nan")
    out.update(n_queries=int(ok.sum()), n_skipped=int((~ok).sum()), ap=ap)
    return out


def loo_ranks(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, ranks)``: for each row, all other rows by descending inner product (self excluded)."""
    x = np.asarray(vectors, dtype=np.float32)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    ranks = np.argsort(-sim, axis=1, kind="stable")[:, :-1]
    return np.take_along_axis(sim, ranks, 1), ranks


def loo_metrics(vectors: np.ndarray, labels: Sequence[Any], ks: Sequence[int] = (1, 10)) -> dict[str, Any]:
    """Leave-one-out mAP and P@k of descriptors ``vectors`` (one row per labelled image)."""
    return loo_metrics_from_ranks(loo_ranks(vectors)[1], labels, ks)


# --- Revisited Oxford / Paris ------------------------------------------------------------------------
@dataclass
class RevisitopGnd:
    """Ground truth of ROxford5k / RParis6k: database and query image names, per-query easy/hard/junk."""

    imlist: list[str]
    qimlist: list[str]
    gnd: list[dict[str, Any]]


def load_revisitop_gnd(path: str | Path) -> RevisitopGnd:
    """Load the JSON conversion of an official ``gnd_*.pkl`` (never the pickle itself)."""
    p = Path(path)
    if p.suffix == ".pkl":
        raise DataFormatError(
            "refusing to unpickle; convert the official gnd pickle to JSON first (datasets/roxford-rparis.md)", p
        )
    try:
        raw = json.loads(p.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise DataFormatError(f"cannot read ground truth JSON ({type(e).__name__}: {e})", p) from e
    return revisitop_gnd_from_dict(raw, source=p)


def _image_names(raw: Any, key: str, source: str | Path | None) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise DataFormatError(f"ground truth {key!r} must be a list of non-empty image names", source)
    for name in raw:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts or "\0" in name:
            raise DataFormatError(f"{key}: image name {name!r} leaves the image folder (absolute or '..')", source)
    return list(raw)


def revisitop_gnd_from_dict(raw: Mapping[str, Any], source: str | Path | None = None) -> RevisitopGnd:
    """Check and convert the ground truth: names are relative and stay inside the image folder, indices are
    integers within ``imlist``; anything else is a :class:`DataFormatError` naming the entry."""
    if not isinstance(raw, Mapping):
        raise DataFormatError("ground truth must be a JSON object", source)
    for key in ("imlist", "qimlist", "gnd"):
        if key not in raw:
            raise DataFormatError(f"ground truth lacks the key {key!r}", source)
    imlist, qimlist = _image_names(raw["imlist"], "imlist", source), _image_names(raw["qimlist"], "qimlist", source)
    if not isinstance(raw["gnd"], list):
        raise DataFormatError("ground truth 'gnd' must be a list", source)
    gnd = list(raw["gnd"])
    if len(gnd) != len(qimlist):
        raise DataFormatError(f"{len(gnd)} gnd entries for {len(qimlist)} queries", source)
    n = len(imlist)
    out = []
    for qi, g in enumerate(gnd):
        if not isinstance(g, Mapping):
            raise DataFormatError(f"gnd[{qi}] is not an object", source)
        entry: dict[str, Any] = {}
        for key in ("easy", "hard", "junk"):
            if key not in g:
                raise DataFormatError(f"gnd[{qi}] lacks {key!r}", source)
            vals = g[key] if isinstance(g[key], list) else None
            if vals is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                raise DataFormatError(f"gnd[{qi}][{key!r}] must be a list of integer indices", source)
            idx = np.asarray(vals, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise DataFormatError(f"gnd[{qi}][{key!r}] has indices outside 0..{n - 1}", source)
            entry[key] = idx
        if "bbx" in g and g["bbx"] is not None:
            bbx = g["bbx"]
            if (
                not isinstance(bbx, list)
                or len(bbx) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in bbx)
            ):
                raise DataFormatError(f"gnd[{qi}]['bbx'] must be 4 finite numbers", source)
            entry["bbx"] = [float(v) for v in bbx]
        out.append(entry)
    return RevisitopGnd(imlist, qimlist, out)


def revisitop_queries(gnd: RevisitopGnd, image_dir: str | Path, *, ext: str = ".jpg", crop: bool = True) -> list[Query]:
    """The benchmark's queries as :class:`Query` objects, each image cropped to its ``bbx`` (the standard protocol).

    ``image_dir / (name + ext)`` must exist for every ``qimlist`` name; cropping decodes the image now.
    """
    out = []
    for name, g in zip(gnd.qimlist, gnd.gnd, strict=True):
        path = Path(image_dir) / f"{name}{ext}"
        if not crop or "bbx" not in g:
            out.append(Query(name, image=path))
            continue
        img = load_image(path)
        x1, y1, x2, y2 = g["bbx"]
        box = (max(0, int(x1)), max(0, int(y1)), min(img.width, round(x2)), min(img.height, round(y2)))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DataFormatError(f"query {name!r}: empty bounding box {g['bbx']} for a {img.width}x{img.height} image")
        out.append(Query(name, image=img.crop(box), meta={"bbx": list(g["bbx"]), "path": str(path)}))
    return out


def revisitop_items(gnd: RevisitopGnd, image_dir: str | Path, *, ext: str = ".jpg") -> list[Item]:
    """The database images as :class:`Item` objects (ids are the ``imlist`` names; decoded lazily)."""
    return [Item(name, image=Path(image_dir) / f"{name}{ext}") for name in gnd.imlist]


def _revisitop_ap_pk(ranking: np.ndarray, ok: np.ndarray, junk: np.ndarray, ks: Sequence[int]) -> tuple[float, list]:
    keep = ~np.isin(ranking, junk)
    filtered = ranking[keep]
    pos = np.flatnonzero(np.isin(filtered, ok))  # 0-based positions after junk removal
    nres = len(ok)
    ap = 0.0
    for j, r in enumerate(pos):
        p0 = 1.0 if r == 0 else j / r
        p1 = (j + 1) / (r + 1)
        ap += (p0 + p1) / 2.0 / nres
    pks = []
    for k in ks:
        if len(pos) == 0:
            pks.append(0.0)
            continue
        kq = min(int(pos.max()) + 1, k)
        pks.append(float(np.sum(pos + 1 <= kq) / kq))
    return ap, pks


def revisitop_evaluate(
    ranks: np.ndarray, gnd: RevisitopGnd | Sequence[Mapping[str, Any]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, dict[str, float]]:
    """Easy / Medium / Hard mAP and mP@k (in %, as papers report) of ``ranks`` (``(n_queries, n_db)``,
    database indices best first).

    Easy: positives = easy, junk = junk + hard. Medium: positives = easy + hard, junk = junk.
    Hard: positives = hard, junk = junk + easy. Queries without positives are left out.
    """
    entries = gnd.gnd if isinstance(gnd, RevisitopGnd) else list(gnd)
    ranks = np.asarray(ranks)
    if ranks.shape[0] != len(entries):
        raise DataFormatError(f"ranks has {ranks.shape[0]} rows for {len(entries)} queries")
    setups = {
        "easy": (("easy",), ("junk", "hard")),
        "medium": (("easy", "hard"), ("junk",)),
        "hard": (("hard",), ("junk", "easy")),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (pos_keys, junk_keys) in setups.items():
        aps, pks = [], []
        for qi, g in enumerate(entries):
            ok = np.concatenate([np.asarray(g[k], dtype=np.int64).reshape(-1) for k in pos_keys])
            if ok.size == 0:
                continue
            junk = np.concatenate([np.asarray(g[k], dtype=np.int64).reshape(-1) for k in junk_keys])
            ap, pk = _revisitop_ap_pk(ranks[qi], ok, junk, ks)
            aps.append(ap)
            pks.append(pk)
        res = {"mAP": 100.0 * float(np.mean(aps)) if aps else float("nan"), "n_queries": float(len(aps))}
        mp = np.mean(pks, axis=0) if pks else [float("nan")] * len(ks)
        for k, v in zip(ks, mp, strict=True):
            res[f"mP@{k}"] = 100.0 * float(v)
        out[name] = res
    return out


def revisitop_evaluate_run(run: Run, gnd: RevisitopGnd, ks: Sequence[int] = (1, 5, 10)) -> dict[str, dict[str, float]]:
    """:func:`revisitop_evaluate` for a :class:`Run` whose query ids are ``qimlist`` names and hit ids
    ``imlist`` names. Database images missing from a ranking count as not retrieved."""
    pos = {name: i for i, name in enumerate(gnd.imlist)}
    n = len(gnd.imlist)
    ranks = np.full((len(gnd.qimlist), n), -1, dtype=np.int64)
    for qi, q in enumerate(gnd.qimlist):
        if q not in run:
            raise DataFormatError(f"run has no ranking for query {q!r}")
        ids = [pos[h.id] for h in run[q].sorted().hits if h.id in pos][:n]
        ranks[qi, : len(ids)] = ids
    return revisitop_evaluate(ranks, gnd, ks)
