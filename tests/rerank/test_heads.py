"""Scoring heads (arXiv 2510.14824): SFT p(yes) and contrastive z_yes, shared by the text yes-no reranker and the
VLM one; checked against the formula and against a plain full forward of tiny Qwen2-VL / Qwen2.5-VL models."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.vlm import VLM
from mmrank.prompts import load_prompt
from mmrank.rerank.heads import cl_score, head_scores, judge_conversation, sft_score
from mmrank.rerank.pointwise import YesNoReranker
from mmrank.rerank.vlm_pointwise import VLMYesNoReranker
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_qwen
from tests.tiny_vlm import colour_image, save_tiny_qwen2_5_vl, save_tiny_qwen2_vl

torch.set_num_threads(1)

BUILDERS = {"qwen2-vl": save_tiny_qwen2_vl, "qwen2.5-vl": save_tiny_qwen2_5_vl}
JUDGE = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
INSTRUCT = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model_dir(request, tmp_path_factory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def lm(model_dir) -> VLM:
    return VLM(str(model_dir), device="cpu", batch_size=2)


def test_heads_match_the_formulas():
    z = torch.tensor([[0.0, 2.0, -1.0], [1.5, -0.5, 3.0]], dtype=torch.float64)  # ids: no=0, yes=1
    p = sft_score(z, yes_id=1, no_id=0)
    torch.testing.assert_close(p, torch.tensor([math.exp(2) / (math.exp(2) + 1), 1 / (1 + math.exp(2))], dtype=z.dtype))
    torch.testing.assert_close(cl_score(z, yes_id=1), torch.tensor([2.0, -0.5], dtype=z.dtype))
    torch.testing.assert_close(head_scores(z, "cl", yes_id=1, no_id=0), cl_score(z, 1))
    with pytest.raises(ValueError):
        head_scores(z, "softmax", yes_id=1, no_id=0)
    g = z.clone().requires_grad_(True)
    sft_score(g, 1, 0).sum().backward()  # differentiable: training reuses the same functions
    s = p.detach()
    torch.testing.assert_close(g.grad[:, 1], s * (1 - s))


def test_judge_conversation_parts():
    p = load_prompt("vlm_yes_no")
    img, qimg = colour_image("red"), colour_image("blue")
    msgs = judge_conversation(p, query_text="red?", query_image=qimg, doc_text="a red square", doc_image=img)
    assert msgs == [
        {"role": "system", "content": JUDGE},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<Instruct>: " + INSTRUCT},
                {"type": "text", "text": "<Query>:"},
                {"type": "image", "image": qimg},
                {"type": "text", "text": "red?"},
                {"type": "text", "text": "\n<Document>:"},
                {"type": "image", "image": img},
                {"type": "text", "text": "a red square"},
            ],
        },
    ]
    text_only = judge_conversation(p, instruction="Find it", query_text="q", doc_text="d")
    assert [c["text"] for c in text_only[1]["content"]] == [
        "<Instruct>: Find it",
        "<Query>:",
        "q",
        "\n<Document>:",
        "d",
    ]


def pairs_run() -> tuple[Run, list[Item], Query]:
    items = [
        Item("img", image=colour_image("red")),
        Item("both", text="a blue circle", image=colour_image("blue", (50, 30))),
        Item("txt", text="a green triangle on a red square"),
    ]
    q = Query("q", text="a red square")
    return Run([Ranking("q", [Hit(it.id, 3.0 - i, it) for i, it in enumerate(items)], query=q)]), items, q


def independent_scores(processor, model, q: Query, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Hand-built paper prompt -> processor -> a plain full forward per pair -> last-position logits -> heads."""
    from qwen_vl_utils import process_vision_info

    yes, no = processor.tokenizer.convert_tokens_to_ids("yes"), processor.tokenizer.convert_tokens_to_ids("no")
    sft, cl = [], []
    for it in items:
        parts = [{"type": "text", "text": "<Instruct>: " + INSTRUCT}, {"type": "text", "text": "<Query>:"}]
        parts += [{"type": "text", "text": q.text}, {"type": "text", "text": "\n<Document>:"}]
        if it.image is not None:
            parts.append({"type": "image", "image": it.image, "min_pixels": 4 * 28 * 28, "max_pixels": 1280 * 28 * 28})
        if it.text:
            parts.append({"type": "text", "text": it.text})
        msgs = [{"role": "system", "content": JUDGE}, {"role": "user", "content": parts}]
        text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        images, _ = process_vision_info(msgs)
        inputs = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            z = model(**inputs).logits[0, -1].double()
        sft.append(float(torch.exp(z[yes]) / (torch.exp(z[yes]) + torch.exp(z[no]))))
        cl.append(float(z[yes]))
    return np.array(sft), np.array(cl)


def test_vlm_heads_equal_an_independent_forward(model_dir):
    run, items, q = pairs_run()
    sft = VLMYesNoReranker(str(model_dir), device="cpu", batch_size=2, head="sft")
    cl = VLMYesNoReranker(lm=sft.lm, head="cl")
    ref_sft, ref_cl = independent_scores(sft.lm.processor, sft.lm.model, q, items)
    got_sft, calls = sft.score_pairs([(q, it) for it in items])
    got_cl, _ = cl.score_pairs([(q, it) for it in items])
    np.testing.assert_allclose(got_sft, ref_sft, atol=1e-6)
    np.testing.assert_allclose(got_cl, ref_cl, atol=1e-5)
    assert calls == 2  # 3 pairs, batch size 2
    out = sft.rerank(None, run)["q"]
    assert out.ids == [items[i].id for i in np.argsort(-ref_sft, kind="stable")] and out.fallbacks == []
    assert out.stage == "vlm-yes-no" and out.model_calls == 2


def test_training_path_gives_the_same_scores_with_gradients(lm):
    _run, items, q = pairs_run()
    rr = VLMYesNoReranker(lm=lm, head="cl")
    convs = [rr.conversation(q, it, doc_image=lm.prepare_image(it) if it.image is not None else None) for it in items]
    with torch.enable_grad():
        z = lm.last_logits(convs)
        s = head_scores(z, "cl", yes_id=rr.yes_id, no_id=rr.no_id)
        assert s.requires_grad
    ref, _ = rr.score_pairs([(q, it) for it in items])
    np.testing.assert_allclose(s.detach().double().numpy(), ref, atol=1e-5)


def test_composed_query_and_bad_images_are_recorded(lm, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    items = [
        Item("ok", text="red square", image=colour_image("red")),
        Item("bad-with-text", text="a red square", image=str(bad)),
        Item("bad-only", image=str(bad)),
        Item("ok2", image=colour_image("green")),
    ]
    q = Query("q", text="make it red", image=colour_image("white"))  # composed query: image + text
    run = Run([Ranking("q", [Hit(it.id, 4.0 - i, it) for i, it in enumerate(items)], query=q)])
    rr = VLMYesNoReranker(lm=lm)
    out = rr.rerank(None, run)["q"]
    assert out.ids[-1] == "bad-only" and len(out) == 4
    assert out.fallbacks == [
        "vlm-yes-no: candidate image failed to load (ImageLoadError), ranked last (1/4 docs)",
        "vlm-yes-no: candidate image failed to load (ImageLoadError), scored without it (1/4 docs)",
    ]
    conv = rr.conversation(q, items[0], query_image="Q", doc_image="D")
    assert [p.get("image", p.get("text")) for p in conv[1]["content"]][1:] == [
        "<Query>:",
        "Q",
        "make it red",
        "\n<Document>:",
        "D",
        "red square",
    ]


def test_lora_adapter_scores_reload_merged_and_unmerged(model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(model_dir)
    torch.manual_seed(3)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "lora")
    _run, items, q = pairs_run()
    pairs = [(q, it) for it in items]
    scores = {}
    for name, kw in {
        "unmerged": {"adapter": str(tmp_path / "lora")},
        "merged": {"adapter": str(tmp_path / "lora"), "merge_adapter": True},
        "folder": {},
    }.items():
        src = str(tmp_path / "lora") if name == "folder" else str(model_dir)
        rr = VLMYesNoReranker(lm=VLM(src, device="cpu", min_pixels=4 * 28 * 28, max_pixels=1280 * 28 * 28, **kw))
        scores[name] = rr.score_pairs(pairs)[0]
    plain = VLMYesNoReranker(lm=VLM(str(model_dir), device="cpu", min_pixels=4 * 28 * 28, max_pixels=1280 * 28 * 28))
    peft_model.eval()
    ref, _ = independent_scores(plain.lm.processor, peft_model, q, items)
    np.testing.assert_allclose(scores["unmerged"], ref, atol=1e-6)
    np.testing.assert_allclose(scores["merged"], ref, atol=1e-5)
    np.testing.assert_allclose(scores["folder"], ref, atol=1e-6)
    assert not np.allclose(plain.score_pairs(pairs)[0], ref, atol=1e-6)


def test_text_yes_no_reranker_uses_the_shared_head(tmp_path):
    rr = YesNoReranker(str(save_tiny_qwen(tmp_path / "q")), device="cpu", head="sft")
    pairs = [(Query("q", text="capital of France"), Item("d", text="Paris is the capital of France."))]
    z, _ = rr.logits(pairs)
    got, _ = rr.score_pairs(pairs)
    zy, zn = float(z[0, rr.yes_id]), float(z[0, rr.no_id])
    assert got[0] == pytest.approx(math.exp(zy) / (math.exp(zy) + math.exp(zn)), abs=1e-9)
