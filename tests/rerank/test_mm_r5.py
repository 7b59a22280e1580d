"""MM-R5 (arXiv 2506.12364): the paper's chat structure, parsing of good and malformed outputs, windows over a
budget, failed images, the text-LLM backbone, with tiny Qwen2-VL / Qwen2.5-VL / Qwen2 models."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.llm.causal import CausalLM
from mmrank.llm.vlm import VLM
from mmrank.rerank.listwise import sliding_windows
from mmrank.rerank.mm_r5 import MMR5Reranker, parse_mm_r5
from mmrank.types import Hit, Item, Query, Ranking, Run
from tests.tiny_text import save_tiny_qwen
from tests.tiny_vlm import colour_image, save_tiny_qwen2_5_vl, save_tiny_qwen2_vl

torch.set_num_threads(1)

# The official prompt, written out independently of mmrank/prompts/mm_r5.yaml (i2vec/MM-R5 examples/reranker.py).
PAPER_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think><answer> answer here </answer>"
)
PAPER_USER = (
    "Please rank the following images according to their relevance to the question. "
    "Provide your response in the format: <think>your reasoning process here</think><answer>[image_id_1, "
    "image_id_2, ...]</answer> where the numbers in the list represent the ranking order of images'id from most to "
    "least relevant. Before outputting the answer, you need to analyze each image and provide your analysis "
    "process.For example: <think>Image 1 shows the most relevant content because...</think><answer>[id_most_relevant, "
    "id_second_relevant, ...]</answer>\nThe question is: {Question}\n\nThere are {image_num} images, id from 1 to "
    "{image_num_end}, Image ID to image mapping:\n"
)

BUILDERS = {"qwen2-vl": save_tiny_qwen2_vl, "qwen2.5-vl": save_tiny_qwen2_5_vl}
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white"]


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model_dir(request, tmp_path_factory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def vlm(model_dir) -> VLM:
    return VLM(str(model_dir), device="cpu", batch_size=4)


def image_run(n: int, qid: str = "q1", bad: set[int] | None = None, tmp: Path | None = None) -> Run:
    items = []
    for i in range(n):
        if bad and i in bad:
            assert tmp is not None
            p = tmp / f"broken{i}.png"
            p.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
            items.append(Item(f"d{i}", image=str(p)))
        else:
            items.append(Item(f"d{i}", image=colour_image(COLOURS[i % len(COLOURS)], (30 + 7 * i, 40))))
    q = Query(qid, text="which image is red?")
    return Run([Ranking(qid, [Hit(it.id, float(n - i), it) for i, it in enumerate(items)], query=q)])


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_good_output():
    p = parse_mm_r5("<think>Image 2 shows a red square.</think><answer>[2, 3, 1]</answer>", 3)
    assert p.order == [1, 2, 0] and p.reasoning == "Image 2 shows a red square." and p.answer == "2, 3, 1"
    assert p.notes() == [] and not p.failed


def test_parse_out_of_range_and_duplicates():
    p = parse_mm_r5("<think>x</think><answer>[0, 99, 3, 3]</answer>", 4)
    assert p.order == [2, 0, 1, 3]  # 3 read; 1, 2, 4 appended in input order
    assert (p.out_of_range, p.duplicates, p.missing) == (2, 1, 3)
    assert p.notes() == [
        "1 duplicate id(s) dropped",
        "2 out-of-range id(s) dropped",
        "3 missing id(s) appended in input order",
    ]


def test_parse_no_answer_tag_keeps_input_order():
    p = parse_mm_r5("<think>Image 1 is best</think> I think 2, 1", 3)
    assert p.order == [0, 1, 2] and p.failed and p.answer is None
    assert p.notes() == ["no <answer>[..]</answer> in output, kept input order"]
    assert parse_mm_r5("", 2).order == [0, 1] and parse_mm_r5(None, 0).order == []


def test_parse_reasoning_that_never_closes():
    p = parse_mm_r5("<think>Image 3 looks relevant because <answer>[3, 1]</answer>", 3)
    assert p.order == [2, 0, 1] and not p.think_closed and p.reasoning == "Image 3 looks relevant because"
    assert "reasoning never closed (no </think>)" in p.notes()
    cut = parse_mm_r5("<think>Image 1 is a chart and Image 2", 2)  # truncated at max_new_tokens
    assert cut.order == [0, 1] and cut.reasoning == "Image 1 is a chart and Image 2" and cut.failed


def test_parse_prefers_the_answer_after_the_reasoning_and_repairs():
    echo = "<think>format: <answer>[id_most_relevant, ...]</answer> so</think>\n<answer>[2, 1]</answer>"
    assert parse_mm_r5(echo, 2).order == [1, 0]
    p = parse_mm_r5("<answer> [ 2,\n Image 1, 12345678901234567890 ] </answer>", 2)
    assert p.order == [1, 0] and p.unreadable == 1 and p.out_of_range == 1
    assert parse_mm_r5("<answer>[]</answer>", 2).notes() == ["no valid id in answer, kept input order"]
    assert parse_mm_r5("<answer>2, 1</answer>", 2).failed  # not a bracketed list: as the official regex


def test_parse_is_linear_on_adversarial_text():
    n = 200_000
    text = "<think>" + "<answer>[" * n + "1" + "]</answer>" * 3  # catastrophic for backtracking patterns
    p = parse_mm_r5(text, 2)
    assert p.order == [0, 1] and p.n_read == 1
    assert parse_mm_r5("<answer>[" + ",".join(["1"] * n) + "]</answer>", 2).duplicates == n - 1


def official_order(text: str, n: int) -> list[int] | None:
    """The official parser of examples/reranker.py restated (None where it would raise or keep duplicates)."""
    m = re.search(r"<answer>\[(.*?)\]</answer>", text)
    if not m:
        return list(range(n))
    try:
        ids = [int(x) - 1 for x in m.group(1).strip().split(",") if x.strip()]
    except ValueError:
        return None
    ids = [i for i in ids if 0 <= i < n]
    if len(set(ids)) != len(ids):
        return None
    return ids + sorted(set(range(n)) - set(ids))


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.integers(-2, 9), max_size=8),
    n=st.integers(0, 6),
    pre=st.text(alphabet="ab <>/[],12", max_size=12),
    post=st.text(alphabet="ab <>/[],12", max_size=12),
)
def test_parse_agrees_with_the_official_rule(ids, n, pre, post):
    text = f"{pre}<answer>[{', '.join(map(str, ids))}]</answer>{post}"
    if text.count("<answer>") != 1 or "<think>" in text:
        return
    ref = official_order(text, n)
    if ref is not None:
        assert parse_mm_r5(text, n).order == ref


# ---------------------------------------------------------------------------------------------- chat structure
def test_chat_sent_to_the_processor_is_the_papers_template(vlm, monkeypatch):
    sent: list[tuple[Any, str]] = []
    original = vlm.processor.apply_chat_template

    def spy(messages, **kw):
        text = original(messages, **kw)
        sent.append((messages, text))
        return text

    monkeypatch.setattr(vlm.processor, "apply_chat_template", spy)
    run = image_run(3)
    out = MMR5Reranker(lm=vlm, max_new_tokens=4).rerank(None, run)
    assert len(sent) == 1  # one prompt: measured once, generated from the same encoding
    messages, text = sent[0]
    items = [h.item for h in run["q1"].hits]
    user = PAPER_USER.format(Question="which image is red?", image_num=3, image_num_end=3)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": PAPER_SYSTEM}]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text"] + ["text", "image"] * 3
    assert [p["text"] for p in parts if p["type"] == "text"] == [user, "\nImage 1: ", "\nImage 2: ", "\nImage 3: "]
    for part, item in zip(parts[2::2], items, strict=True):  # images in input order, resized as the processor would
        assert part["image"].size == vlm.prepare_image(item).size
        assert list(part["image"].getdata()) == list(vlm.prepare_image(item).getdata())
    pad = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text == (
        f"<|im_start|>system\n{PAPER_SYSTEM}<|im_end|>\n<|im_start|>user\n{user}"
        f"\nImage 1: {pad}\nImage 2: {pad}\nImage 3: {pad}<|im_end|>\n<|im_start|>assistant\n"
    )
    r = out["q1"]
    assert r.model_calls == 1 and sorted(r.ids) == ["d0", "d1", "d2"] and r.stage == "mm-r5"
    assert r.meta["mm-r5"]["windows"][0]["candidates"] == ["d0", "d1", "d2"]


# ---------------------------------------------------------------------------------------------- engine (scripted)
class ScriptedVLM(VLM):
    """The real tiny VLM for templating and encoding; only its generation is replaced by a script."""

    def __init__(self, path: Path, respond) -> None:
        super().__init__(str(path), device="cpu", batch_size=4)
        self.respond = respond
        self.batches: list[list[Any]] = []
        self.kwargs: list[dict[str, Any]] = []

    def generate(self, conversations, **kw) -> list[str]:
        encs = [self.encode(c) for c in conversations]
        self._check_length(encs, reserve=kw["max_new_tokens"])  # every window fits the budget
        self.batches.append(encs)
        self.kwargs.append(kw)
        self.calls += 1
        return [self.respond(e) for e in encs]


def n_images(enc) -> int:
    return enc.images


def reverse_answer(enc) -> str:
    k = n_images(enc)
    return f"<think>Image {k} is best.</think><answer>[{', '.join(str(i) for i in range(k, 0, -1))}]</answer>"


def test_answers_reorder_and_defaults_follow_the_paper(model_dir):
    lm = ScriptedVLM(model_dir, reverse_answer)
    rr = MMR5Reranker(lm=lm)
    assert (rr.temperature, rr.max_new_tokens, rr.top_p) == (0.3, 8192, 1.0)
    rr = MMR5Reranker(lm=lm, max_new_tokens=16)
    out = rr.rerank(None, image_run(4))["q1"]
    assert out.ids == ["d3", "d2", "d1", "d0"] and out.fallbacks == []
    assert lm.kwargs[0]["temperature"] == 0.3 and lm.kwargs[0]["max_new_tokens"] == 16
    assert out.meta["mm-r5"]["windows"] == [
        {
            "window": [0, 4],
            "candidates": ["d0", "d1", "d2", "d3"],
            "reasoning": "Image 4 is best.",
            "answer": "4, 3, 2, 1",
        }
    ]


def test_candidate_list_longer_than_the_budget_is_split_into_windows(model_dir):
    lm = ScriptedVLM(model_dir, reverse_answer)
    n, new = 7, 8
    one = MMR5Reranker(lm=lm, max_new_tokens=new)
    full = one._encode(
        one.build_messages("which image is red?", [lm.prepare_image(h.item) for h in image_run(n)["q1"].hits])
    )
    lm.max_length = full.length + new - 1  # the whole list no longer fits
    out = MMR5Reranker(lm=lm, max_new_tokens=new).rerank(None, image_run(n))["q1"]
    note = next(f for f in out.fallbacks if "over the budget" in f)
    w = int(re.search(r"windows of (\d+)", note).group(1))
    assert 2 <= w < n
    # a hand-run of the same bottom-up sliding window with "reverse the window" answers
    order = list(range(n))
    for a, b in sliding_windows(n, w, max(1, w // 2)):
        order[a:b] = order[a:b][::-1]
    assert out.ids == [f"d{i}" for i in order]
    assert out.model_calls == len(sliding_windows(n, w, max(1, w // 2))) == len(out.meta["mm-r5"]["windows"])
    lm.max_length = 10  # not even two candidates fit: input order, recorded
    tiny = MMR5Reranker(lm=lm, max_new_tokens=new).rerank(None, image_run(3))["q1"]
    assert tiny.ids == ["d0", "d1", "d2"] and any("fewer than 2" in f for f in tiny.fallbacks)


def test_pixel_budget_and_window_split(model_dir):
    lm = ScriptedVLM(model_dir, reverse_answer)
    run = image_run(5)
    pixels = sorted((im.width * im.height for im in (lm.prepare_image(h.item) for h in run["q1"].hits)), reverse=True)
    rr = MMR5Reranker(lm=lm, max_new_tokens=4, max_total_pixels=sum(pixels[:3]))
    out = rr.rerank(None, run)["q1"]
    assert any("max_total_pixels" in f and "windows of 3" in f for f in out.fallbacks)
    assert all(e.images <= 3 for b in lm.batches for e in b) and len(lm.batches) == len(sliding_windows(5, 3, 1))
    fixed = MMR5Reranker(lm=ScriptedVLM(model_dir, reverse_answer), max_new_tokens=4, window=2, step=1)
    res = fixed.rerank(None, image_run(3))["q1"]
    assert res.model_calls == 2 and not any("budget" in f for f in res.fallbacks)  # a chosen window: no fallback


class BrokenPage(Item):
    """A page whose lazy render fails with a renderer's own error type."""

    def load_image(self, mode: str = "RGB"):
        raise RuntimeError("pdfium: cannot render page")


def test_failed_image_is_left_out_and_placed_last(model_dir, tmp_path):
    lm = ScriptedVLM(model_dir, reverse_answer)
    run = image_run(4, bad={1}, tmp=tmp_path)
    r = run["q1"]
    r.hits.insert(0, Hit("page", 99.0, BrokenPage("page", image="doc.pdf#3")))
    out = MMR5Reranker(lm=lm, max_new_tokens=4).rerank(None, run)["q1"]
    assert [e.images for b in lm.batches for e in b] == [3]  # the broken images are not in the prompt
    assert out.ids == ["d3", "d2", "d0", "page", "d1"]  # 3 shown candidates reversed, the broken ones last
    assert "mm-r5: 1 candidate(s) not shown (image failed to load), placed last in input order" in out.fallbacks
    assert any("(image failed to load (RuntimeError))" in f for f in out.fallbacks)


def test_batches_queries_and_seeds_per_query(model_dir):
    lm = ScriptedVLM(model_dir, lambda e: "garbage")
    run = Run([*image_run(3, "a").values(), *image_run(2, "b").values()])
    out = MMR5Reranker(lm=lm, max_new_tokens=4).rerank(None, run)
    assert len(lm.batches) == 1 and len(lm.batches[0]) == 2  # both queries' windows in one generation
    s1 = lm.kwargs[0]["seed"]
    assert len(set(s1)) == 2
    MMR5Reranker(lm=lm, max_new_tokens=4).rerank(None, Run([run["b"]]))
    assert lm.kwargs[1]["seed"] == [s1[1]]  # a query's seed does not depend on the batch
    assert out["a"].ids == ["d0", "d1", "d2"]
    assert "mm-r5 window 0-3: no <answer>[..]</answer> in output, kept input order" in out["a"].fallbacks


def test_real_tiny_vlm_end_to_end_is_reproducible(vlm):
    state = torch.get_rng_state()
    a = MMR5Reranker(lm=vlm, max_new_tokens=6, seed=1).rerank(None, image_run(3))["q1"]
    b = MMR5Reranker(lm=vlm, max_new_tokens=6, seed=1).rerank(None, image_run(3))["q1"]
    assert torch.equal(torch.get_rng_state(), state)
    assert a.ids == b.ids and a.meta == b.meta and a.model_calls == 1


# ---------------------------------------------------------------------------------------------- text backbone
def test_text_llm_backbone_uses_the_same_prompt_shape(tmp_path):
    lm = CausalLM(str(save_tiny_qwen(tmp_path / "qwen")), device="cpu")
    items = [Item("p1", text="The cat sat on the mat."), Item("p2", text="Paris is the capital of France.")]
    q = Query("q", text="What is the capital of France?")
    run = Run([Ranking("q", [Hit(it.id, 2.0 - i, it) for i, it in enumerate(items)], query=q)])
    rr = MMR5Reranker(lm=lm, max_new_tokens=5)
    msgs = rr.build_messages(q.text, [it.text for it in items])
    user = PAPER_USER.format(Question=q.text, image_num=2, image_num_end=2)
    assert msgs == [
        {"role": "system", "content": PAPER_SYSTEM},
        {
            "role": "user",
            "content": user + "\nImage 1: The cat sat on the mat.\nImage 2: Paris is the capital of France.",
        },
    ]
    state = torch.get_rng_state()
    out = rr.rerank(None, run)["q"]
    assert torch.equal(torch.get_rng_state(), state)
    assert sorted(out.ids) == ["p1", "p2"] and out.model_calls == 1
    with pytest.raises(ValueError):
        MMR5Reranker(lm=lm, candidate="pictures")  # type: ignore[arg-type]
