"""EBR: the grid conversation, single-pass reranking of the head, robust repairs, the tail untouched; the real tiny
Qwen2-VL end to end; the pointwise VLM baseline against an independent logit computation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmrank import registry
from mmrank.cir.ebr import EBRReranker
from mmrank.cir.parse import parse_grid_ranking
from mmrank.cir.pointwise import PointwiseVLMReranker
from mmrank.cir.retrieve import ComposedRetriever
from mmrank.types import Hit, Query, Ranking, Run
from tests.cir.conftest import ScriptedVLM, images, user_text


@pytest.fixture(scope="module")
def first_stage(tiny_clip, synthetic):
    corpus, queries, _ = synthetic
    return ComposedRetriever(tiny_clip).index(corpus).retrieve(queries[:4], k=20), queries[:4]


def test_grid_conversation_and_reordering(first_stage, tmp_path):
    run, queries = first_stage
    vlm = ScriptedVLM(lambda conv: "Ranked list: [9, 8, 7, 6, 5, 4, 3, 2, 1]")
    ebr = EBRReranker(vlm, k=9, save_grids=tmp_path / "grids")
    out = ebr.rerank(None, run)
    assert vlm.calls == 1 and len(vlm.conversations) == 4  # one batched generate, one conversation per query
    for q in queries:
        before, after = run[q.id], out[q.id]
        assert after.ids[:9] == before.ids[:9][::-1]
        assert after.ids[9:] == before.ids[9:]  # beyond K: first-stage order below the head
        assert after.model_calls == 1 and after.fallbacks == [] and after.stage == "ebr"
        assert after.scores == sorted(after.scores, reverse=True)
    conv = vlm.conversations[0]
    imgs = images(conv)
    assert len(imgs) == 2 and isinstance(imgs[1], Image.Image)  # reference, then the grid
    text = user_text(conv)
    assert "grid of 9 candidate images" in text and "(1 to 9)" in text and queries[0].text in text
    assert imgs[1].width * imgs[1].height <= vlm.max_pixels
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == sorted(f"{q.id}.png" for q in queries)
    assert vlm.last_max_new_tokens == 4 * 9 + 16


def test_repairs_are_recorded(first_stage):
    run, queries = first_stage
    answers = {
        queries[0].id: "Ranked list: [2, 2, 11, 1]",  # duplicate, out of range, missing
        queries[1].id: "no idea",
        queries[2].id: "3 then 1",
        queries[3].id: "Ranked list: [1, 2, 3, 4, 5, 6, 7, 8, 9]",
    }
    responses = iter(answers[q.id] for q in queries)
    vlm = ScriptedVLM(lambda conv: next(responses))
    out = EBRReranker(vlm, k=9).rerank(queries, run)
    head = run[queries[0].id].ids[:9]
    assert out[queries[0].id].ids[:9] == [head[1], head[0], *head[2:]]
    fb = out[queries[0].id].fallbacks
    assert any("duplicate" in f for f in fb) and any("outside 1..9: 11" in f for f in fb)
    assert any("appended 7" in f for f in fb)
    assert out[queries[1].id].ids == run[queries[1].id].ids
    assert out[queries[1].id].fallbacks[-1] == "ebr: no parsable ranking; kept the first-stage order"
    assert out[queries[2].id].ids[:2] == [run[queries[2].id].ids[2], run[queries[2].id].ids[0]]
    assert out[queries[3].id].ids == run[queries[3].id].ids and out[queries[3].id].fallbacks == []
    prov = out.provenance()
    assert prov["model_calls"] == 4


def test_k_beyond_candidates_missing_images_and_reference_cell(tmp_path, synthetic):
    corpus, queries, _ = synthetic
    q = queries[0]
    items = [corpus[i] for i in list(corpus)[1:5]]
    broken = tmp_path / "b.jpg"
    broken.write_bytes(b"garbage")
    from mmrank.types import Item

    items.append(Item("broken", image=broken))
    run = Run([Ranking(q.id, [Hit(it.id, 1.0 - i / 10, it) for i, it in enumerate(items)], query=q)])
    vlm = ScriptedVLM(lambda conv: "Ranked list: [5, 4, 3, 2, 1]")
    out = EBRReranker(vlm, k=16, reference="cell").rerank(None, run)[q.id]
    assert out.ids == [it.id for it in items][::-1]
    assert any("k=16 exceeds the 5 candidates" in f for f in out.fallbacks)
    assert any("unreadable, drawn blank: broken" in f for f in out.fallbacks)
    conv = vlm.conversations[0]
    assert len(images(conv)) == 1 and "marked REF" in user_text(conv)
    # one candidate, or no reference image: nothing is sent to the VLM
    one = Run([Ranking("t", [Hit("x", 1.0, items[0])], query=Query("t", text="only text"))])
    out = EBRReranker(vlm, k=9).rerank(None, one)["t"]
    assert out.ids == ["x"] and "nothing to rerank" in out.fallbacks[0] and len(vlm.conversations) == 1
    with pytest.raises(ValueError, match="k >= 2"):
        EBRReranker(vlm, k=1)


def test_sqaf_then_ebr_with_the_tiny_qwen2_vl(tiny_clip, tiny_vlm, synthetic, tmp_path):
    corpus, queries, _ = synthetic
    sqaf = registry.retriever("sqaf", encoder=tiny_clip, vlm=tiny_vlm).index(corpus)
    first = sqaf.retrieve(queries[:3], k=12)
    ebr = registry.reranker("ebr", lm=tiny_vlm, k=9, save_grids=tmp_path)
    before = tiny_vlm.calls
    out = ebr.rerank(None, first)
    assert tiny_vlm.calls - before == 1  # 3 queries in one batch of the backend (batch_size 4)
    # independently: the same batch of conversations, the model's greedy answers, parsed
    convs = [ebr.build(q, first[q.id].hits[:9])[0] for q in queries[:3]]
    answers = tiny_vlm.generate(convs, max_new_tokens=4 * 9 + 16, temperature=0.0)
    for q, ans in zip(queries[:3], answers, strict=True):
        a, b = first[q.id], out[q.id]
        order, fb = parse_grid_ranking(ans, 9, anchor=ebr.prompt.regex())
        assert b.ids[:9] == [a.ids[i] for i in order] and b.ids[9:] == a.ids[9:]
        assert b.fallbacks == fb  # a random model rarely writes a ranking: the repairs are recorded
        assert b.model_calls == 1 and b.query.meta["target_caption"]  # the SQAF caption travels along
    grid = Image.open(tmp_path / f"{queries[0].id}.png")
    assert grid.width * grid.height <= tiny_vlm.max_pixels


def test_pointwise_scores_are_the_yes_no_margin(tiny_vlm, first_stage):
    run, queries = first_stage
    pw = PointwiseVLMReranker(tiny_vlm, batch_size=4)
    small = run.top(3)
    out = pw.rerank(queries[:2], Run([small[q.id] for q in queries[:2]]))
    for q in queries[:2]:
        hits = small[q.id].hits
        convs = [pw.conversation(q, q.load_image(), h.item.load_image()) for h in hits]
        logits = tiny_vlm.next_token_logits(convs)
        margin = (logits[:, tiny_vlm.token_id("yes")] - logits[:, tiny_vlm.token_id("no")]).numpy()
        expected = [hits[i].id for i in np.argsort(-margin, kind="stable")]
        assert out[q.id].ids == expected
        np.testing.assert_allclose(sorted(out[q.id].scores, reverse=True), sorted(margin, reverse=True), rtol=1e-4)
    assert out.provenance()["model_calls"] == 6  # one prompt per candidate
