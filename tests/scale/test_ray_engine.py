"""Ray Data engine on a local Ray runtime (2 CPUs, one per test session): the Ray index and the Ray rerank equal the
single-process ones (same ids, scores within 1e-5), through the Python API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrank.types import Corpus, Hit, Item, Query, Ranking, Run

TEXTS = [
    "The cat sat on the mat and purred.",
    "Dogs bark at night to warn of strangers.",
    "Paris is the capital of France.",
    "Machine learning ranks documents by relevance.",
    "A kitten sleeps in the sun.",
    "Berlin is the capital of Germany.",
    "Search engines index the web.",
    "Puppies play in the garden.",
    "The Eiffel Tower stands in Paris.",
    "Rerankers reorder retrieved passages.",
]


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    from mmrank.scale.ray_engine import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus([Item(f"d{i}", text=t, title=f"doc {i}") for i, t in enumerate(TEXTS)])


def test_ray_index_equals_the_single_process_index(ray_runtime, corpus, tmp_path):
    from mmrank.retrieve.text_index import TextSearch, index_corpus

    index_corpus(corpus, tmp_path / "local", retriever="dense")
    rep = index_corpus(corpus, tmp_path / "ray", retriever="dense", engine="ray", workers=1, batch_size=4)
    assert rep.count == len(TEXTS)
    a, b = TextSearch(tmp_path / "local"), TextSearch(tmp_path / "ray")
    assert a.index.ids == b.index.ids  # type: ignore[attr-defined]
    np.testing.assert_allclose(a.index.vectors, b.index.vectors, atol=1e-5)  # type: ignore[attr-defined]
    ra, rb = a.search("capital city of France", 5), b.search("capital city of France", 5)
    assert ra.ids == rb.ids and ra.ids[0] in ("d2", "d8")
    np.testing.assert_allclose(ra.scores, rb.scores, atol=1e-5)
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith("shards")]  # staging merged, removed


def test_ray_rerank_equals_single_process(ray_runtime, corpus, tmp_path):
    from mmrank import registry
    from mmrank.scale.ray_engine import rerank_ray

    queries = [Query("q1", text="capital of France"), Query("q2", text="young cats"), Query("q3", text="dogs")]
    run = Run(Ranking(q.id, [Hit(it.id, 0.0, it) for it in corpus.values()]) for q in queries)
    local = registry.resolve("reranker", "bi-encoder")().rerank(queries, run, top_k=6)
    ray_out = rerank_ray("bi-encoder", queries, run, top_k=6, workers=2, batch_size=2)
    assert list(ray_out) == list(local)
    for q in local:
        assert ray_out[q].ids == local[q].ids
        np.testing.assert_allclose(ray_out[q].scores, local[q].scores, atol=1e-5)
        assert ray_out[q].stage == local[q].stage


def test_cli_engine_ray(ray_runtime, corpus, tmp_path, capsys):
    from mmrank.cli.main import main
    from mmrank.io import load_run

    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": i.id, "text": i.text}) + "\n" for i in corpus.values()))
    (tmp_path / "q.tsv").write_text("q1\tcapital of France\n")
    (tmp_path / "run.trec").write_text("".join(f"q1 Q0 d{i} {i + 1} {-i} x\n" for i in range(len(TEXTS))))
    args = ["rerank", "--candidates", str(tmp_path / "run.trec"), "--corpus", str(path), "--queries"]
    args += [str(tmp_path / "q.tsv"), "--reranker", "bi-encoder", "--out"]
    assert main([*args, str(tmp_path / "ray.trec"), "--engine", "ray"]) == 0
    assert main([*args, str(tmp_path / "local.trec")]) == 0
    a, b = load_run(tmp_path / "ray.trec")["q1"], load_run(tmp_path / "local.trec")["q1"]
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert main(["index", str(path), "--out", str(tmp_path / "b"), "--retriever", "bm25", "--engine", "ray"]) == 2


def test_ray_image_folder_index_equals_the_single_process_index(ray_runtime, tmp_path, capsys):
    """``mmrank index FOLDER --engine ray`` (tiny CLIP from config, 2 actors, one unreadable file) equals the local
    index: same ids, vectors and text / image / composed search scores within 1e-5, the same file skipped."""
    import torch

    from mmrank import registry
    from mmrank.cli.main import main
    from mmrank.vision import ImageSearch, index_folder
    from tests.tiny_vision import save_tiny_hf_clip, write_photos

    torch.set_num_threads(1)
    photos = tmp_path / "photos"
    write_photos(photos, size=48)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    clip = save_tiny_hf_clip(tmp_path / "clip")
    enc = registry.encoder("hf-clip", model=str(clip), device="cpu")
    local = index_folder(photos, tmp_path / "local", encoder=enc, index="exact", use_cache=False)
    cli = ["index", str(photos), "--out", str(tmp_path / "ray"), "--encoder", "hf-clip", "--model", str(clip)]
    cli += ["--device", "cpu", "--index", "exact", "--no-cache", "--batch-size", "3"]
    assert main([*cli, "--engine", "ray", "--workers", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["indexed"] == local.n_indexed == 8
    assert len(local.warnings) == 1 and "broken.jpg" in local.warnings[0] and "broken.jpg" in err
    a, b = ImageSearch(tmp_path / "local", encoder=enc), ImageSearch(tmp_path / "ray", encoder=enc)
    assert b.manifest["engine"] == "ray" and a.index.ids == b.index.ids  # type: ignore[attr-defined]
    np.testing.assert_allclose(a.index.vectors, b.index.vectors, atol=1e-5)  # type: ignore[attr-defined]
    for q in [photos / "coffee.jpg", "a photo of a cat", Query("c", text="as a drawing", image=photos / "rocket.jpg")]:
        ra, rb = a.search(q, 5), b.search(q, 5)
        assert ra.ids == rb.ids
        np.testing.assert_allclose(ra.scores, rb.scores, atol=1e-5)
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith("shards")]  # staging merged, removed
