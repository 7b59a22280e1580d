"""Composed image retrieval (CIR) benchmarks: loaders, metrics and test-server submissions.

* **CIRR** (Liu et al., ICCV 2021, arXiv 2108.04024). Recall@K and Recall_subset@K as the official code computes
  them (CLIP4Cir ``compute_cirr_val_metrics``, used by Pic2Word, SEARLE, WeiMoCIR and CIRPLANT alike): the
  reference image is removed from the ranking first; Recall@K = the hard target is in the top K; Recall_subset@K
  ranks only the query's ``img_set`` members (reference removed, so 5 images) in the order of the full ranking.
  ``soft=True`` gives CIRPLANT's soft-label variant (the best ``target_soft`` score among the top K, negatives
  counting 0). test1: the evaluation server's two JSON files (``"version": "rc2"``, ``"metric": "recall"`` with
  the top 50, ``"recall_subset"`` with the top 3 members), keys are ``pairid``.
* **CIRCO** (Baldrati et al., ICCV 2023, arXiv 2303.15247). mAP@K with several ground truths as the official
  ``src/evaluation.py``: ``AP@K = sum_{i<=K, rel_i} P@i / min(n_gt, K)``; Recall@K of the single target image;
  mAP@10 per semantic aspect. Duplicate predictions are an error (as there). The reference image stays in the
  gallery (the official code does not remove it). test: ``{"query id": [top-50 image ids as int]}`` for all 800.
* **FashionIQ** (Wu et al., CVPR 2021, arXiv 1905.12794). Per category (dress, shirt, toptee) Recall@10/50 over
  the category's split gallery (reference kept, as CLIP4Cir); the reported average is the plain mean over the
  three categories. The two captions are joined as CLIP4Cir does: ``"{c1.strip('.?, ').capitalize()} and
  {c2.strip('.?, ')}"``. Test-split targets are not public.

All metrics are in percent, as the papers report them. Loaders validate the schema and the split of every record
and raise :class:`DataFormatError` naming the file and the record; image files are resolved under a local root
(none are shipped), see ``datasets/cirr.md``, ``circo.md`` and ``fashioniq.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError, UnknownNameError
from mmrank.types import Corpus, Item, Query

DATASETS = ("cirr", "circo", "fashioniq")
FASHIONIQ_CATEGORIES = ("dress", "shirt", "toptee")
CIRR_KS = (1, 5, 10, 50)
CIRR_SUBSET_KS = (1, 2, 3)
CIRCO_KS = (5, 10, 25, 50)
FASHIONIQ_KS = (10, 50)
CIRCO_ASPECTS = (
    "cardinality",
    "addition",
    "negation",
    "direct_addressing",
    "compare_change",
    "comparative_statement",
    "statement_with_conjunction",
    "spatial_relations_background",
    "viewpoint",
)
_SPLITS = {"cirr": {"val": "val", "test": "test1", "test1": "test1"}, "circo": {"val": "val", "test": "test"}}
_SPLITS["fashioniq"] = _SPLITS["circo"]
_CIRR_PREFIX = {"val": "dev-", "test1": "test1-"}


@dataclass(frozen=True)
class CIRSample:
    """One composed query of a benchmark, with its ground truth when the split has it."""

    id: str
    reference: str
    text: str
    target: str | None = None  # CIRR target_hard, CIRCO target_img_id, FashionIQ target
    targets: tuple[str, ...] = ()  # every ground truth (CIRCO gt_img_ids; else the target)
    members: tuple[str, ...] = ()  # CIRR img_set members (Recall_subset)
    soft: Mapping[str, float] | None = None  # CIRR target_soft
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CIRBenchmark:
    """A benchmark split: samples, gallery (image id -> path, possibly not on disk) and evaluation rules."""

    dataset: str
    split: str
    samples: list[CIRSample]
    gallery: dict[str, Path]
    source: Path
    category: str | None = None
    exclude_reference: bool = False

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.category}-{self.split}" if self.category else f"{self.dataset}-{self.split}"

    @property
    def has_labels(self) -> bool:
        return all(s.targets for s in self.samples)

    @property
    def needs_full_ranking(self) -> bool:
        """CIRR's subset recall orders the set members by the full ranking."""
        return self.dataset == "cirr"

    def query(self, sample: CIRSample) -> Query:
        """The composed :class:`Query` of ``sample`` (reference image path + modification text)."""
        ref = self.gallery.get(sample.reference)
        if ref is None:
            raise DataFormatError(f"{self.name} query {sample.id!r}: reference image {sample.reference!r} unknown")
        meta: dict[str, Any] = {"reference_id": sample.reference, "benchmark": self.name}
        if self.exclude_reference:
            meta["exclude"] = [sample.reference]
        return Query(sample.id, text=sample.text, image=ref, meta=meta)

    def queries(self) -> list[Query]:
        return [self.query(s) for s in self.samples]

    def corpus(self, ids: Iterable[str] | None = None) -> Corpus:
        keep = self.gallery if ids is None else {i: self.gallery[i] for i in ids}
        return Corpus((Item(i, image=p) for i, p in keep.items()), name=self.name)

    def missing_images(self) -> dict[str, Path]:
        """Gallery and reference images that are not on disk (one ``stat`` each)."""
        return {i: p for i, p in self.gallery.items() if not p.is_file()}

    def evaluate(
        self,
        predictions: Mapping[str, Sequence[str]],
        subset_predictions: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Metrics of ``predictions`` (query id -> ranked image ids) over the queries present in it."""
        if not self.has_labels:
            raise DataFormatError(f"{self.name}: this split has no public ground truth; write a submission instead")
        samples = [s for s in self.samples if s.id in predictions]
        if self.dataset == "cirr":
            return cirr_metrics(predictions, samples, subset_predictions=subset_predictions, **kwargs)
        if self.dataset == "circo":
            return circo_metrics(predictions, samples, **kwargs)
        return fashioniq_metrics(predictions, samples, **kwargs)


# --- metrics -----------------------------------------------------------------------------------------
def _without(ranking: Sequence[str], drop: str) -> list[str]:
    return [x for x in ranking if x != drop]


def cirr_subset_ranking(ranking: Sequence[str], sample: CIRSample) -> list[str]:
    """The query's set members (reference removed) in the order of ``ranking``; every member must be ranked."""
    members = set(sample.members) - {sample.reference}
    out = [x for x in ranking if x in members]
    if len(out) != len(members):
        lost = sorted(members - set(out))
        raise DataFormatError(
            f"CIRR pairid {sample.id}: the ranking lacks set members {lost}; rank the whole gallery (or pass "
            "subset_predictions) to compute Recall_subset"
        )
    return out


def cirr_metrics(
    predictions: Mapping[str, Sequence[str]],
    samples: Sequence[CIRSample],
    *,
    ks: Sequence[int] = CIRR_KS,
    subset_ks: Sequence[int] = CIRR_SUBSET_KS,
    subset_predictions: Mapping[str, Sequence[str]] | None = None,
    soft: bool = False,
) -> dict[str, Any]:
    """CIRR Recall@K and Recall_subset@K in percent, plus ``avg`` = (R@5 + Rsubset@1) / 2 (the usual "Avg").

    The reference image is removed from each ranking. ``subset_predictions`` (query id -> ranked members) is
    used when given; otherwise the subset order is read from ``predictions``, which must then rank every member.
    """
    if not samples:
        raise DataFormatError("CIRR: no query to evaluate")
    rec = {k: 0.0 for k in ks}
    sub = {k: 0.0 for k in subset_ks}
    for s in samples:
        if s.target is None:
            raise DataFormatError(f"CIRR pairid {s.id}: no target (test split?)")
        ranking = _without(predictions[s.id], s.reference)
        if subset_predictions is not None and s.id in subset_predictions:
            ranked_members = _without(subset_predictions[s.id], s.reference)
        else:
            ranked_members = cirr_subset_ranking(ranking, s)
        gains = dict(s.soft or {}) if soft else {s.target: 1.0}
        for group, lst, acc in ((ks, ranking, rec), (subset_ks, ranked_members, sub)):
            for k in group:
                acc[k] += max([gains.get(x, 0.0) for x in lst[:k]] + [0.0])
    n = len(samples)
    out: dict[str, Any] = {f"R@{k}": 100.0 * v / n for k, v in rec.items()}
    out.update({f"Rsubset@{k}": 100.0 * v / n for k, v in sub.items()})
    if 5 in rec and 1 in sub:
        out["avg"] = (out["R@5"] + out["Rsubset@1"]) / 2
    out["n_queries"] = n
    return out


def circo_average_precision(ranking: Sequence[str], gts: Sequence[str], k: int) -> float:
    """CIRCO AP@K: mean of the precision at each ground-truth position within K over ``min(len(gts), K)``."""
    if not gts:
        raise DataFormatError("AP@K needs at least one ground truth")
    gt = set(gts)
    hits, total = 0, 0.0
    for i, x in enumerate(ranking[:k]):
        if x in gt:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(gt), k)


def circo_metrics(
    predictions: Mapping[str, Sequence[str]], samples: Sequence[CIRSample], *, ks: Sequence[int] = CIRCO_KS
) -> dict[str, Any]:
    """CIRCO mAP@K (all ground truths), Recall@K (the single target) and mAP@10 per semantic aspect, in percent."""
    if not samples:
        raise DataFormatError("CIRCO: no query to evaluate")
    aps: dict[int, list[float]] = {k: [] for k in ks}
    rec: dict[int, list[float]] = {k: [] for k in ks}
    aspects: dict[str, list[float]] = {}
    for s in samples:
        ranking = list(predictions[s.id])
        if len(set(ranking)) != len(ranking):
            raise DataFormatError(f"CIRCO query {s.id}: duplicate predictions")
        if not s.targets:
            raise DataFormatError(f"CIRCO query {s.id}: no ground truth (test split?)")
        for k in ks:
            aps[k].append(circo_average_precision(ranking, s.targets, k))
            rec[k].append(float(s.target in ranking[:k]))
        ap10 = circo_average_precision(ranking, s.targets, 10)
        for a in s.meta.get("semantic_aspects", ()):
            aspects.setdefault(a, []).append(ap10)
    out: dict[str, Any] = {f"mAP@{k}": 100.0 * float(np.mean(v)) for k, v in aps.items()}
    out.update({f"R@{k}": 100.0 * float(np.mean(v)) for k, v in rec.items()})
    out["semantic_mAP@10"] = {a: 100.0 * float(np.mean(aspects[a])) for a in CIRCO_ASPECTS if a in aspects}
    out["n_queries"] = len(samples)
    return out


def fashioniq_metrics(
    predictions: Mapping[str, Sequence[str]], samples: Sequence[CIRSample], *, ks: Sequence[int] = FASHIONIQ_KS
) -> dict[str, Any]:
    """Recall@K (percent) of one FashionIQ category."""
    if not samples:
        raise DataFormatError("FashionIQ: no query to evaluate")
    out: dict[str, Any] = {}
    for k in ks:
        out[f"R@{k}"] = 100.0 * sum(s.target in list(predictions[s.id])[:k] for s in samples) / len(samples)
    out["n_queries"] = len(samples)
    return out


def fashioniq_average(per_category: Mapping[str, Mapping[str, Any]], ks: Sequence[int] = FASHIONIQ_KS) -> dict:
    """The FashionIQ summary: per-category results, their plain mean per K, and the mean of those means."""
    if not per_category:
        raise DataFormatError("FashionIQ: no category to average")
    avg = {f"R@{k}": float(np.mean([r[f"R@{k}"] for r in per_category.values()])) for k in ks}
    return {
        **{c: dict(r) for c, r in per_category.items()},
        "avg": avg,
        "avg_all": float(np.mean(list(avg.values()))),
        "categories": list(per_category),
    }


# --- submissions ---------------------------------------------------------------------------------------
def cirr_submission(
    predictions: Mapping[str, Sequence[str]],
    samples: Sequence[CIRSample],
    *,
    subset_predictions: Mapping[str, Sequence[str]] | None = None,
    version: str = "rc2",
    top: int = 50,
    top_subset: int = 3,
) -> dict[str, dict[str, Any]]:
    """The two files of the CIRR test server: ``{"recall": {...}, "recall_subset": {...}}`` (reference removed)."""
    recall: dict[str, Any] = {"version": version, "metric": "recall"}
    subset: dict[str, Any] = {"version": version, "metric": "recall_subset"}
    for s in samples:
        if s.id not in predictions:
            raise DataFormatError(f"CIRR submission: no prediction for pairid {s.id}; the server needs every query")
        ranking = _without(predictions[s.id], s.reference)
        recall[s.id] = ranking[:top]
        if subset_predictions is not None and s.id in subset_predictions:
            members = _without(subset_predictions[s.id], s.reference)
        else:
            members = cirr_subset_ranking(ranking, s)
        subset[s.id] = members[:top_subset]
    return {"recall": recall, "recall_subset": subset}


def circo_submission(predictions: Mapping[str, Sequence[str]], samples: Sequence[CIRSample], *, top: int = 50) -> dict:
    """The CIRCO server file: every query id -> its top-50 image ids as integers, no duplicates."""
    out: dict[str, list[int]] = {}
    for s in samples:
        if s.id not in predictions:
            raise DataFormatError(f"CIRCO submission: no prediction for query {s.id}; the server needs every query")
        ranking = list(predictions[s.id])[:top]
        if len(set(ranking)) != len(ranking):
            raise DataFormatError(f"CIRCO submission: duplicate predictions for query {s.id}")
        try:
            out[s.id] = [int(x) for x in ranking]
        except ValueError as e:
            raise DataFormatError(f"CIRCO submission: query {s.id}: image ids must be COCO integers ({e})") from e
    return out


# --- loaders -------------------------------------------------------------------------------------------
def normalise_split(dataset: str, split: str) -> str:
    table = _SPLITS.get(dataset)
    if table is None:
        raise UnknownNameError(f"unknown CIR dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if split not in table:
        raise UnknownNameError(f"{dataset}: unknown split {split!r}; known: {', '.join(sorted(table))}")
    return table[split]


def find_annotations(dataset: str, annotations: str | Path) -> Path:
    """The dataset's annotation folder: ``annotations`` itself or its ``dataset`` subfolder (``.../cir/cirr``)."""
    root = Path(annotations)
    probe = {"cirr": "captions", "circo": "annotations", "fashioniq": "captions"}[dataset]
    for cand in (root, root / dataset):
        if (cand / probe).is_dir():
            return cand
    raise DataFormatError(f"no {dataset} annotations here (expected a {probe}/ folder)", root)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataFormatError("annotation file not found", path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(f"cannot read JSON ({e})", path) from e


def _record(path: Path, i: int, rec: Any, keys: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise DataFormatError(f"record {i}: expected an object, got {type(rec).__name__}", path)
    missing = [k for k in keys if k not in rec]
    if missing:
        ident = rec.get("pairid", rec.get("id", i))
        raise DataFormatError(f"record {i} ({what} {ident}): missing {missing}", path)
    return rec


def _text(path: Path, i: int, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise DataFormatError(f"record {i}: {what} must be a string, got {type(value).__name__}", path)
    return value


def load_cirr(
    annotations: str | Path, images: str | Path | None = None, split: str = "val", *, version: str = "rc2"
) -> CIRBenchmark:
    """CIRR val (4,181 triplets, 2,297 gallery images) or test1 (4,148 queries, 2,315 images).

    ``annotations`` holds ``captions/cap.{version}.{split}.json`` and ``image_splits/split.{version}.{split}.json``;
    image paths are the split file's relative paths under ``images`` (or ``images/img_raw``).
    """
    split = normalise_split("cirr", split)
    ann = find_annotations("cirr", annotations)
    cap_path = ann / "captions" / f"cap.{version}.{split}.json"
    split_path = ann / "image_splits" / f"split.{version}.{split}.json"
    records = _read_json(cap_path)
    names = _read_json(split_path)
    if not isinstance(records, list):
        raise DataFormatError("expected a list of triplets", cap_path)
    if not isinstance(names, dict):
        raise DataFormatError("expected an object image name -> relative path", split_path)
    prefix = _CIRR_PREFIX[split]
    base = Path(images) if images is not None else Path(".")
    if images is not None and (base / "img_raw").is_dir() and not (base / split.replace("val", "dev")).is_dir():
        base = base / "img_raw"
    gallery = {str(k): base / str(v) for k, v in names.items()}
    keys = ["pairid", "reference", "caption", "img_set"] + (["target_hard", "target_soft"] if split == "val" else [])
    samples, seen = [], set()
    for i, raw in enumerate(records):
        rec = _record(cap_path, i, raw, keys, "pairid")
        pid = str(rec["pairid"])
        ref = _text(cap_path, i, rec["reference"], "reference")
        if not ref.startswith(prefix):
            raise DataFormatError(
                f"record {i} (pairid {pid}): reference {ref!r} is not a {split} image (expected {prefix}*); "
                "annotations of another split?",
                cap_path,
            )
        if pid in seen:
            raise DataFormatError(f"record {i}: duplicate pairid {pid}", cap_path)
        seen.add(pid)
        members = rec["img_set"].get("members") if isinstance(rec["img_set"], dict) else None
        if not isinstance(members, list) or not members:
            raise DataFormatError(f"record {i} (pairid {pid}): img_set.members missing or empty", cap_path)
        target = rec.get("target_hard") if split == "val" else None
        for name in [ref, *members] + ([target] if target else []):
            if name not in gallery:
                raise DataFormatError(f"record {i} (pairid {pid}): image {name!r} not in {split_path.name}", cap_path)
        soft = rec.get("target_soft")
        if split == "val" and not isinstance(soft, dict):
            raise DataFormatError(f"record {i} (pairid {pid}): target_soft must be an object", cap_path)
        samples.append(
            CIRSample(
                id=pid,
                reference=ref,
                text=_text(cap_path, i, rec["caption"], "caption"),
                target=target,
                targets=(target,) if target else (),
                members=tuple(str(m) for m in members),
                soft={str(k): float(v) for k, v in soft.items()} if isinstance(soft, dict) else None,
            )
        )
    return CIRBenchmark("cirr", split, samples, gallery, cap_path, exclude_reference=True)


def _coco_gallery(images: Path) -> dict[str, Path]:
    """COCO 2017 unlabeled image id -> path, from ``image_info_unlabeled2017.json`` or the folder listing."""
    bases = [images / "COCO2017_unlabeled" / "unlabeled2017", images / "unlabeled2017", images]
    base = next((b for b in bases if b.is_dir()), None)
    if base is None:
        raise DataFormatError("CIRCO image folder not found (expected COCO2017_unlabeled/unlabeled2017/)", images)
    for info in (
        images / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json",
        images / "annotations" / "image_info_unlabeled2017.json",
    ):
        if info.is_file():
            data = _read_json(info)
            try:
                return {str(int(im["id"])): base / str(im["file_name"]) for im in data["images"]}
            except (KeyError, TypeError, ValueError) as e:
                raise DataFormatError(f"not a COCO image-info file ({e})", info) from e
    out = {}
    for p in sorted(base.iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stem.isdigit():
            out[str(int(p.stem))] = p
    if not out:
        raise DataFormatError("no COCO images (<id>.jpg) found", base)
    return out


def load_circo(annotations: str | Path, images: str | Path | None = None, split: str = "val") -> CIRBenchmark:
    """CIRCO val (220 queries, 916 ground truths) or test (800 queries) over COCO 2017 unlabeled.

    The gallery is every COCO unlabeled image under ``images`` (``COCO2017_unlabeled/unlabeled2017``, listed by
    ``image_info_unlabeled2017.json`` when present); without ``images`` only the references and ground truths
    are known (enough to check annotations and score predictions).
    """
    split = normalise_split("circo", split)
    ann = find_annotations("circo", annotations)
    path = ann / "annotations" / f"{split}.json"
    records = _read_json(path)
    if not isinstance(records, list):
        raise DataFormatError("expected a list of queries", path)
    keys = ["id", "reference_img_id", "relative_caption", "shared_concept"]
    if split == "val":
        keys += ["target_img_id", "gt_img_ids"]
    samples = []
    for i, raw in enumerate(records):
        rec = _record(path, i, raw, keys, "id")
        if split == "test" and "gt_img_ids" in rec:
            raise DataFormatError(f"record {i} (id {rec['id']}): has gt_img_ids; this is not the test file", path)
        if str(rec["id"]) != str(i):
            raise DataFormatError(f"record {i}: query ids must be 0..n-1 in order, got {rec['id']!r}", path)
        gts: tuple[str, ...] = ()
        target = None
        if split == "val":
            if not isinstance(rec["gt_img_ids"], list) or not rec["gt_img_ids"]:
                raise DataFormatError(f"record {i} (id {rec['id']}): gt_img_ids must be a non-empty list", path)
            gts = tuple(str(int(g)) for g in rec["gt_img_ids"])
            target = str(int(rec["target_img_id"]))
            if target not in gts:
                raise DataFormatError(f"record {i} (id {rec['id']}): target_img_id not among gt_img_ids", path)
        samples.append(
            CIRSample(
                id=str(rec["id"]),
                reference=str(int(rec["reference_img_id"])),
                text=_text(path, i, rec["relative_caption"], "relative_caption"),
                target=target,
                targets=gts,
                meta={
                    "shared_concept": rec["shared_concept"],
                    "semantic_aspects": tuple(rec.get("semantic_aspects", ())),
                },
            )
        )
    if images is not None:
        gallery = _coco_gallery(Path(images))
    else:
        ids = {s.reference for s in samples} | {g for s in samples for g in s.targets}
        gallery = {i: Path(f"{int(i):012d}.jpg") for i in sorted(ids, key=int)}
    return CIRBenchmark("circo", split, samples, gallery, path)


def fashioniq_caption(captions: Sequence[str]) -> str:
    """CLIP4Cir's deterministic join of the two relative captions."""
    caps = [c for c in captions if isinstance(c, str)]
    if len(caps) < 2:
        return (caps[0] if caps else "").strip(".?, ")
    return f"{caps[0].strip('.?, ').capitalize()} and {caps[1].strip('.?, ')}"


def load_fashioniq(
    annotations: str | Path, images: str | Path | None = None, split: str = "val", category: str = "dress"
) -> CIRBenchmark:
    """One FashionIQ category: ``captions/cap.{category}.{split}.json`` over ``image_splits/split.{category}.{split}
    .json``; images are ``images/<asin>.png`` (or ``.jpg``) under ``images``."""
    split = normalise_split("fashioniq", split)
    if category not in FASHIONIQ_CATEGORIES:
        raise UnknownNameError(f"unknown FashionIQ category {category!r}; known: {', '.join(FASHIONIQ_CATEGORIES)}")
    ann = find_annotations("fashioniq", annotations)
    cap_path = ann / "captions" / f"cap.{category}.{split}.json"
    split_path = ann / "image_splits" / f"split.{category}.{split}.json"
    records = _read_json(cap_path)
    names = _read_json(split_path)
    if not isinstance(records, list):
        raise DataFormatError("expected a list of triplets", cap_path)
    if not isinstance(names, list):
        raise DataFormatError("expected a list of image names", split_path)
    base = Path(images) if images is not None else Path(".")
    if images is not None and (base / "images").is_dir():
        base = base / "images"
    gallery: dict[str, Path] = {}
    for n in map(str, names):
        path = base / f"{n}.png"
        if images is not None and not path.is_file():
            path = next((p for p in (base / f"{n}.jpg", base / f"{n}.jpeg") if p.is_file()), path)
        gallery[n] = path
    keys = ["candidate", "captions"] + (["target"] if split == "val" else [])
    samples = []
    for i, raw in enumerate(records):
        rec = _record(cap_path, i, raw, keys, "triplet")
        caps = rec["captions"]
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise DataFormatError(f"record {i}: captions must be a list of strings", cap_path)
        target = str(rec["target"]) if split == "val" else None
        for what, name in (("candidate", str(rec["candidate"])), ("target", target)):
            if name is not None and name not in gallery:
                raise DataFormatError(
                    f"record {i}: {what} {name!r} not in {split_path.name}; annotations of another split or category?",
                    cap_path,
                )
        samples.append(
            CIRSample(
                id=f"{category}-{i}",
                reference=str(rec["candidate"]),
                text=fashioniq_caption(caps),
                target=target,
                targets=(target,) if target else (),
                meta={"captions": tuple(caps), "category": category},
            )
        )
    return CIRBenchmark("fashioniq", split, samples, gallery, cap_path, category=category)


def load_benchmark(
    dataset: str,
    annotations: str | Path,
    images: str | Path | None = None,
    split: str = "val",
    *,
    categories: Sequence[str] = FASHIONIQ_CATEGORIES,
) -> list[CIRBenchmark]:
    """``[benchmark]`` for CIRR / CIRCO, one per category for FashionIQ."""
    if dataset == "cirr":
        return [load_cirr(annotations, images, split)]
    if dataset == "circo":
        return [load_circo(annotations, images, split)]
    if dataset == "fashioniq":
        return [load_fashioniq(annotations, images, split, c) for c in categories]
    raise UnknownNameError(f"unknown CIR dataset {dataset!r}; known: {', '.join(DATASETS)}")
