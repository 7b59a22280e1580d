"""Benchmark runner on miniature CIRR / CIRCO / FashionIQ trees: metrics, checkpoints and resume, bad records."""

from __future__ import annotations

import json

import pytest

from mmrank.cir.bench import run_benchmark, run_fashioniq
from mmrank.cir.retrieve import ComposedRetriever
from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.eval.cir import load_benchmark, load_circo, load_cirr
from tests.cir_fixtures import write_mini_circo, write_mini_cirr, write_mini_fashioniq


@pytest.fixture
def cirr_root(tmp_path):
    return write_mini_cirr(tmp_path / "cirr")


def test_cirr_val_metrics_match_a_direct_evaluation(tiny_clip, cirr_root, tmp_path):
    bench = load_cirr(cirr_root, cirr_root, "val")
    res = run_benchmark(bench, ComposedRetriever(tiny_clip), out=tmp_path / "out", chunk_size=3)
    assert res["evaluated"] == 4 and res["failed"] == {} and res["gallery"] == 12 and res["fallbacks"] == {}
    # independently: rank the whole gallery per query and score with the official semantics
    r = ComposedRetriever(tiny_clip).index(bench.corpus())
    full = r.retrieve(bench.queries(), k=12)
    preds = {q: full[q].ids for q in full}
    assert res["metrics"] == bench.evaluate(preds)
    assert all(s.reference not in preds[s.id] for s in bench.samples)
    lines = (tmp_path / "out" / "cirr-val.predictions.jsonl").read_text().splitlines()
    assert len(lines) == 5 and "config_key" in json.loads(lines[0])
    assert all(len(json.loads(x)["subset"]) == 5 for x in lines[1:])


class Crashing:
    """A retriever that dies (not an mmrank error) after ``after`` chunks: a crash mid-benchmark."""

    def __init__(self, inner, after):
        self.inner, self.after, self.calls = inner, after, 0
        self.skipped = {}

    def index(self, corpus):
        self.inner.index(corpus)
        return self

    def retrieve(self, queries, k):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.inner.retrieve(queries, k)


def test_crash_keeps_finished_queries_and_resume_completes(tiny_clip, cirr_root, tmp_path):
    bench = load_cirr(cirr_root, cirr_root, "val")
    out = tmp_path / "out"
    crashing = Crashing(ComposedRetriever(tiny_clip), after=1)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(bench, crashing, out=out, chunk_size=2, config={"m": 1})
    ckpt = out / "cirr-val.predictions.jsonl"
    assert len(ckpt.read_text().splitlines()) == 3  # header + the first chunk of 2
    with open(ckpt, "a") as f:
        f.write('{"id": "10')  # a line cut short by the crash
    again = Crashing(ComposedRetriever(tiny_clip), after=99)
    res = run_benchmark(bench, again, out=out, chunk_size=2, config={"m": 1})
    assert again.calls == 1 and res["evaluated"] == 4 and "incomplete last line" in res["checkpoint_notes"][0]
    fresh = run_benchmark(bench, ComposedRetriever(tiny_clip), out=tmp_path / "fresh", config={"m": 1})
    assert res["metrics"] == fresh["metrics"]
    with pytest.raises(DataFormatError, match="another configuration"):
        run_benchmark(bench, ComposedRetriever(tiny_clip), out=out, config={"m": 2})


def test_bad_reference_is_recorded_and_missing_images_fail_fast(tiny_clip, cirr_root, tmp_path):
    bench = load_cirr(cirr_root, cirr_root, "val")
    bad = bench.samples[1]
    bench.gallery[bad.reference].write_bytes(b"corrupt")
    res = run_benchmark(bench, ComposedRetriever(tiny_clip), chunk_size=4)
    assert list(res["failed"]) == [bad.id] and "ImageLoadError" in res["failed"][bad.id]
    assert res["evaluated"] == 3 and res["metrics"]["n_queries"] == 3
    assert bad.reference in res["gallery_skipped"]
    members_of = [s.id for s in bench.samples if bad.reference in s.members and s.id != bad.id]
    assert members_of and res["fallbacks"] == {
        "subset: 1 set member image(s) not in the gallery index, ranked last": len(members_of)
    }
    missing = bench.samples[2].reference
    bench.gallery[missing].unlink()
    with pytest.raises(ImageLoadError, match=f"1 of 12 images missing, e.g. {missing}"):
        run_benchmark(bench, ComposedRetriever(tiny_clip))
    res = run_benchmark(bench, ComposedRetriever(tiny_clip), on_missing="skip")
    assert res["dropped"] == {bench.samples[2].id: f"reference image {missing} missing"} and res["gallery"] == 11


def test_cirr_test_split_writes_the_server_files(tiny_clip, cirr_root, tmp_path):
    bench = load_cirr(cirr_root, cirr_root, "test")
    res = run_benchmark(bench, ComposedRetriever(tiny_clip), out=tmp_path)
    recall = json.loads((tmp_path / "cirr-test1.recall.json").read_text())
    subset = json.loads((tmp_path / "cirr-test1.recall_subset.json").read_text())
    assert len(res["submission"]["written"]) == 2 and "metrics" not in res
    assert recall["version"] == "rc2" and recall["metric"] == "recall" and subset["metric"] == "recall_subset"
    for s in bench.samples:
        assert len(recall[s.id]) == 11 and s.reference not in recall[s.id]
        assert len(subset[s.id]) == 3 and set(subset[s.id]) <= set(s.members) - {s.reference}


def test_circo_val_and_test(tiny_clip, tmp_path):
    root = write_mini_circo(tmp_path / "circo")
    res = run_benchmark(load_circo(root, root, "val"), ComposedRetriever(tiny_clip))
    assert res["metrics"]["n_queries"] == 3 and set(res["metrics"]["semantic_mAP@10"]) == {"viewpoint"}
    res = run_benchmark(load_circo(root, root, "test"), ComposedRetriever(tiny_clip), out=tmp_path / "o")
    sub = json.loads((tmp_path / "o" / "circo-test.submission.json").read_text())
    assert sorted(sub) == ["0", "1"] and all(isinstance(x, int) for x in sub["0"]) and len(sub["0"]) == 12


def test_fashioniq_average_over_categories(tiny_clip, tmp_path):
    root = write_mini_fashioniq(tmp_path / "fiq")
    benches = load_benchmark("fashioniq", root, root, "val")
    res = run_fashioniq(benches, lambda: ComposedRetriever(tiny_clip))
    per = {c: res["categories"][c]["metrics"] for c in ("dress", "shirt", "toptee")}
    assert res["metrics"]["avg"]["R@10"] == pytest.approx(sum(m["R@10"] for m in per.values()) / 3)
