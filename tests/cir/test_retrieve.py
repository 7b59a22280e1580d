"""Composed-query retrieval over tiny CLIP: each mode against the formula, exclusions, fallbacks, typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from mmrank import registry
from mmrank.cir.captioner import TargetCaptioner
from mmrank.cir.compose import compose, fuse_caption
from mmrank.cir.retrieve import ComposedRetriever
from mmrank.encoders.base import l2_normalise
from mmrank.errors import ImageLoadError
from mmrank.types import Corpus, Item, Query
from tests.cir.conftest import ScriptedVLM, user_text


def _gallery_vectors(enc, corpus):
    return enc.encode_images([it.image for it in corpus.values()]).vectors


def _expected(enc, corpus, qv, exclude=(), k=10):
    ids = list(corpus)
    scores = _gallery_vectors(enc, corpus) @ qv
    order = [ids[i] for i in np.argsort(-scores, kind="stable") if ids[i] not in exclude]
    return order[:k]


def test_compose_and_fuse_are_the_weighted_normalised_sums():
    a, b = np.array([[3.0, 0.0]]), np.array([[0.0, 2.0]])
    np.testing.assert_allclose(compose(a, b, 0.65), l2_normalise(np.array([[0.35, 0.65]])), rtol=1e-6)
    np.testing.assert_allclose(compose(a, b, 0.0), [[1.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(fuse_caption(a, b, 1.0), [[0.0, 1.0]], atol=1e-7)
    with pytest.raises(ValueError, match="alpha"):
        compose(a, b, 1.5)
    with pytest.raises(ValueError, match="beta"):
        fuse_caption(a, b, -0.1)


@pytest.mark.parametrize("mode", ["image", "text", "sum"])
def test_modes_match_the_formula(tiny_clip, synthetic, mode):
    corpus, queries, _ = synthetic
    q = queries[0]
    r = registry.retriever(f"cir-{mode}", encoder=tiny_clip, alpha=0.3).index(corpus)
    ranking = r.retrieve([q], k=10)[q.id]
    img = tiny_clip.encode_images([q.image]).vectors
    txt = tiny_clip.encode_texts([q.text])
    qv = {"image": img, "text": txt, "sum": l2_normalise(0.7 * img + 0.3 * txt)}[mode][0]
    assert ranking.ids == _expected(tiny_clip, corpus, qv, exclude=q.meta["exclude"])
    assert q.meta["reference_id"] not in ranking.ids and ranking.fallbacks == []
    assert ranking.stage.startswith(f"cir-{mode}:") and all(h.item is not None for h in ranking)


def test_batched_equals_one_by_one_and_k_beyond_gallery(tiny_clip, synthetic):
    corpus, queries, _ = synthetic
    r = ComposedRetriever(tiny_clip).index(corpus)
    batch = r.retrieve(queries[:6], k=5)
    for q in queries[:6]:
        assert batch[q.id].ids == r.retrieve([q], k=5)[q.id].ids
    big = r.retrieve(queries[:1], k=100)[queries[0].id]
    assert len(big) == len(corpus) - 1 and any("exceeds the gallery" in f for f in big.fallbacks)


def test_empty_modification_text_falls_back_to_the_image(tiny_clip, synthetic):
    corpus, queries, _ = synthetic
    q = Query("empty", text="  ", image=queries[0].image)
    r = ComposedRetriever(tiny_clip, mode="sum").index(corpus)
    ranking = r.retrieve([q], k=5)["empty"]
    assert ranking.ids == _expected(tiny_clip, corpus, tiny_clip.encode_images([q.image]).vectors[0], k=5)
    assert ranking.fallbacks == ["empty modification text: searched with the reference image alone"]


def test_bad_images(tiny_clip, synthetic, tmp_path):
    corpus, queries, _ = synthetic
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    items = [*corpus.values(), Item("broken", image=broken)]
    r = ComposedRetriever(tiny_clip).index(Corpus(items))
    assert set(r.skipped) == {"broken"} and "broken" not in r.index_obj.ids
    with pytest.raises(ImageLoadError, match="'bad-ref'"):
        r.retrieve([queries[0], Query("bad-ref", text="make it red", image=broken)], k=3)


def test_cache_dir_gives_the_same_ranking(tiny_clip, synthetic, tmp_path):
    corpus, queries, _ = synthetic
    plain = ComposedRetriever(tiny_clip).index(corpus).retrieve(queries[:3], k=8)
    for _ in range(2):  # cold, then warm cache
        cached = ComposedRetriever(tiny_clip, cache_dir=tmp_path / "c").index(corpus).retrieve(queries[:3], k=8)
        assert [cached[q.id].ids for q in queries[:3]] == [plain[q.id].ids for q in queries[:3]]


def test_caption_and_sqaf_fuse_the_vlm_caption(tiny_clip, synthetic):
    corpus, queries, _ = synthetic
    vlm = ScriptedVLM(lambda conv: "Caption: a photo turned upside down\nsecond line")
    cap = TargetCaptioner(vlm)
    q = queries[3]
    sq = ComposedRetriever(tiny_clip, mode="sqaf", captioner=cap, alpha=0.65, beta=0.4).index(corpus)
    ranking = sq.retrieve([q], k=10)[q.id]
    assert ranking.query.meta["target_caption"] == "a photo turned upside down" and ranking.model_calls == 1
    img = tiny_clip.encode_images([q.image]).vectors
    txt = tiny_clip.encode_texts([q.text])
    capv = tiny_clip.encode_texts(["a photo turned upside down"])
    qv = fuse_caption(compose(img, txt, 0.65), capv, 0.4)[0]
    assert ranking.ids == _expected(tiny_clip, corpus, qv, exclude=q.meta["exclude"])
    conv = vlm.conversations[0]
    assert q.text in user_text(conv) and conv[-1]["content"][0]["type"] == "image"
    # the caption baseline reuses the cached caption: no new VLM call
    cs = ComposedRetriever(tiny_clip, mode="caption", captioner=cap).index(corpus)
    ranking = cs.retrieve([q], k=10)[q.id]
    assert vlm.calls == 1 and ranking.model_calls == 0
    assert ranking.ids == _expected(tiny_clip, corpus, capv[0], exclude=q.meta["exclude"])


def test_captioner_falls_back_to_the_text(tiny_clip, synthetic, tmp_path):
    queries = synthetic[1]
    cap = TargetCaptioner(ScriptedVLM(lambda conv: "   \n"))
    broken = tmp_path / "b.png"
    broken.write_bytes(b"")
    caps, fb, calls = cap.caption([queries[0], Query("b", text="make it red", image=broken)])
    assert caps == [queries[0].text, "make it red"] and calls == [1, 0]
    assert "no caption" in fb[0][0] and "unreadable" in fb[1][0]
    with pytest.raises(ValueError, match="needs a VLM"):
        ComposedRetriever(tiny_clip, mode="sqaf")


def test_sqaf_with_the_tiny_qwen2_vl(tiny_clip, tiny_vlm, synthetic):
    corpus, queries, _ = synthetic
    r = registry.retriever("sqaf", encoder=tiny_clip, vlm=tiny_vlm).index(corpus)
    before = tiny_vlm.calls
    run = r.retrieve(queries[:3], k=6)
    assert tiny_vlm.calls > before and run.provenance()["model_calls"] == 3
    for q in queries[:3]:
        assert len(run[q.id]) == 6 and q.meta["reference_id"] not in run[q.id].ids
