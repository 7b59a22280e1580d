"""Benchmark global descriptors on a labelled image folder: leave-one-out mAP and P@10 for each pooling /
SuperGlobal ablation (arXiv 2308.06954), with encode throughput and reranking time.

Labels come from a CSV with columns ``path,label`` (``path`` relative to the images folder or to the CSV's folder).
For leave-one-out evaluation every image queries the other ``n - 1``, so SuperGlobal reranking uses
``M = min(M, n - 1)``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mmrank.errors import DataFormatError
from mmrank.eval.image import loo_metrics, loo_metrics_from_ranks
from mmrank.globalfeat.superglobal import SuperGlobalConfig
from mmrank.io.lines import iter_lines

# name -> (descriptor config or None for "reuse", base config name for reranking or None)
DEFAULT_CONFIGS: dict[str, tuple[SuperGlobalConfig | None, str | None]] = {
    "avg": (SuperGlobalConfig.off(pooling="avg"), None),
    "max": (SuperGlobalConfig.off(pooling="max"), None),
    "gem (p=3)": (SuperGlobalConfig.off(pooling="gem", gem_p=3.0), None),
    "gem+ (p=4.6)": (SuperGlobalConfig.off(gem_plus=True), None),
    "gem+ +rgem": (SuperGlobalConfig.off(gem_plus=True, rgem=True), None),
    "gem+ +rgem +sgem": (SuperGlobalConfig.off(gem_plus=True, rgem=True, sgem=True), None),
    "gem+ +rgem +sgem +relu+": (SuperGlobalConfig(), None),
    "gem (p=3) +rerank": (None, "gem (p=3)"),
    "gem+ +rgem +sgem +rerank": (None, "gem+ +rgem +sgem"),
    "superglobal +rerank": (None, "gem+ +rgem +sgem +relu+"),
}


def read_labels(
    labels_csv: str | Path, images_dir: str | Path | None = None
) -> tuple[list[Path], list[str], list[str]]:
    """``(paths, labels, warnings)`` from a UTF-8 ``path,label`` CSV; missing files are skipped with a warning.

    Rules: ``path`` is relative and stays inside the folder it is resolved against (an absolute path or a ``..``
    component is a :class:`DataFormatError` naming the line); an image listed twice (the same file, even under
    two spellings) is an error naming both lines, since a duplicate would be its own perfect match and inflate
    the metrics; leave-one-out evaluation needs at least one label with two existing images.
    """
    csv_path = Path(labels_csv)
    if not csv_path.is_file():
        raise DataFormatError("labels file not found", csv_path)
    roots = [Path(images_dir)] if images_dir is not None else []
    roots += [csv_path.parent]
    if images_dir is not None:
        roots.append(Path(images_dir).parent)
    paths: list[Path] = []
    labels: list[str] = []
    warnings: list[str] = []
    first_line: dict[Path, int] = {}
    header: list[str] | None = None
    for line, text in iter_lines(csv_path):  # names the line of any invalid UTF-8
        try:
            fields = next(csv.reader([text]))
        except (csv.Error, StopIteration) as e:
            raise DataFormatError(f"not a CSV line ({e})", csv_path, line) from e
        if header is None:
            header = [f.strip() for f in fields]
            if not {"path", "label"} <= set(header):
                raise DataFormatError(f"needs columns path,label; found {header}", csv_path, line)
            continue
        if len(fields) != len(header):
            raise DataFormatError(f"{len(fields)} fields for {len(header)} columns", csv_path, line)
        row = dict(zip(header, fields, strict=True))
        rel, lab = row["path"].strip(), row["label"].strip()
        if not rel or not lab:
            raise DataFormatError("empty path or label", csv_path, line)
        rp = Path(rel)
        if rp.is_absolute() or ".." in rp.parts or "\0" in rel:
            raise DataFormatError(
                f"path {rel!r} must be relative and stay inside the image folder (no absolute path, no '..')",
                csv_path,
                line,
            )
        cand = next((r / rel for r in roots if (r / rel).is_file()), None)
        if cand is None:
            warnings.append(f"{csv_path}:{line}: {rel} not found under {', '.join(map(str, roots))}; skipped")
            continue
        key = cand.resolve()
        if key in first_line:
            raise DataFormatError(
                f"image {rel!r} is listed twice (first on line {first_line[key]}); each image must appear once",
                csv_path,
                line,
            )
        first_line[key] = line
        paths.append(cand)
        labels.append(lab)
    if header is None:
        raise DataFormatError("empty labels file", csv_path)
    if not paths:
        raise DataFormatError("no listed image exists", csv_path)
    if len(paths) < 2 or max(labels.count(x) for x in set(labels)) < 2:
        raise DataFormatError(
            f"leave-one-out evaluation needs a label with at least two images; found {len(paths)} image(s) "
            f"in {len(set(labels))} label(s)",
            csv_path,
        )
    return paths, labels, warnings


def bench_labelled_folder(
    images: str | Path | None,
    labels_csv: str | Path,
    *,
    backbone: str = "mobilenet_v2",
    weights: str | None = "default",
    configs: Sequence[str] | None = None,
    M: int = 400,
    K: int = 9,
    beta: float = 0.15,
    k: int = 10,
    batch_size: int = 32,
    image_size: int | None = None,
    resize: str = "max-side",
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Return ``({config: {"mAP", "P@k", ...timings}}, warnings)``.

    Configurations that need ReLU+ on a backbone without it are run with ReLU+ off and say so in ``"note"``.
    """
    import torch

    from mmrank.encoders.cnn import CNNEncoder, relu_plus_supported
    from mmrank.globalfeat.rerank import refine_rerank

    paths, labels, warnings = read_labels(labels_csv, images)
    names = list(configs) if configs else list(DEFAULT_CONFIGS)
    for n in names:
        if n not in DEFAULT_CONFIGS:
            raise DataFormatError(f"unknown configuration {n!r}; known: {', '.join(DEFAULT_CONFIGS)}")
    needed = list(dict.fromkeys([DEFAULT_CONFIGS[n][1] or n for n in names] + names))
    vectors: dict[str, np.ndarray] = {}
    keep: np.ndarray | None = None
    results: dict[str, dict[str, Any]] = {}
    for name in needed:
        cfg, base = DEFAULT_CONFIGS[name]
        if cfg is None:
            continue
        note = None
        if cfg.relu_plus and not relu_plus_supported(backbone):
            cfg, note = replace(cfg, relu_plus=False), f"ReLU+ not available on {backbone}; run without it"
        enc = CNNEncoder(
            backbone,
            weights,
            superglobal=cfg,
            image_size=image_size,
            resize=resize,
            batch_size=batch_size,
            device=device,
        )
        cuda = enc.device.type == "cuda"
        enc.encode_images(paths[: batch_size if cuda else 2])  # warm-up: CUDA kernels / allocator for these shapes
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = enc.encode_images(paths)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if keep is None:
            keep = res.ok
            warnings += res.warnings
        elif not np.array_equal(keep, res.ok):
            raise DataFormatError("images failed inconsistently between configurations")
        vectors[name] = res.vectors
        lab = [labels[i] for i in np.flatnonzero(keep)]
        m = loo_metrics(res.vectors, lab, ks=(k,))
        results[name] = {"mAP": round(m["mAP"], 4), f"P@{k}": round(m[f"P@{k}"], 4)}
        results[name]["encode_images_per_s"] = round(len(res.vectors) / dt, 2)
        if note:
            results[name]["note"] = note
        if log:
            log(f"{name}: {results[name]}")
    assert keep is not None
    lab = [labels[i] for i in np.flatnonzero(keep)]
    for name in names:
        cfg, base = DEFAULT_CONFIGS[name]
        if base is None:
            continue
        x = vectors[base]
        n_db = len(x)
        rdev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        refine_rerank(x[:2], x, M=M, K=K, beta=beta, device=rdev)  # warm-up (CUDA context, kernels)
        if rdev.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        _, ranks = refine_rerank(x, x, M=M, K=K, beta=beta, exclude=np.arange(n_db), device=rdev)
        dt = time.perf_counter() - t0
        m = loo_metrics_from_ranks(ranks, lab, ks=(k,))
        row: dict[str, Any] = {
            "mAP": round(m["mAP"], 4),
            f"P@{k}": round(m[f"P@{k}"], 4),
            "rerank_ms_per_query": round(1000.0 * dt / n_db, 3),
            "M": min(M, n_db - 1),
            "K": K,
            "beta": beta,
        }
        results[name] = row
        if log:
            log(f"{name}: {results[name]}")
    return {n: results[n] for n in names}, warnings
