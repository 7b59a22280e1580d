"""VLM backend against naive one-conversation computations on tiny Qwen2-VL and Qwen2.5-VL models saved to disk."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.errors import ContextLengthError, ImageLoadError, ModelNotFoundError
from mmrank.llm.vlm import VLM, clear_vlm_cache, get_vlm
from mmrank.types import Item
from tests.tiny_vlm import colour_image, save_tiny_qwen2_5_vl, save_tiny_qwen2_vl

torch.set_num_threads(1)

BUILDERS = {"qwen2-vl": save_tiny_qwen2_vl, "qwen2.5-vl": save_tiny_qwen2_5_vl}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model_dir(request, tmp_path_factory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def vlm(model_dir) -> VLM:
    return VLM(str(model_dir), device="cpu", batch_size=2)


def conversations() -> list[list[dict]]:
    return [
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Image 1: "},
                    {"type": "image", "image": colour_image("red")},
                    {"type": "text", "text": "is it red? yes or no"},
                ],
            }
        ],
        [{"role": "user", "content": "a text-only question that is longer than the others by quite a few words"}],
        [
            {"role": "system", "content": "Judge."},
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": colour_image("blue", (90, 20))},
                    {"type": "image", "image": Item("g", image=colour_image("green"))},
                    {"type": "text", "text": "two"},
                ],
            },
        ],
    ]


def naive_last_logits(vlm: VLM, conv) -> torch.Tensor:
    """A plain full forward of the model on the processor's inputs for one conversation."""
    enc = vlm.encode(conv)
    with torch.no_grad():
        return vlm.model(**enc.inputs).logits[0, -1].float()


@pytest.mark.parametrize("side", ["left", "right"])
def test_next_token_logits_batched_equals_unbatched_full_forward(model_dir, side):
    vlm = VLM(str(model_dir), device="cpu", batch_size=2, padding_side=side)
    convs = conversations()
    got = vlm.next_token_logits(convs)
    assert got.shape == (3, vlm.model.config.text_config.vocab_size) and got.dtype == torch.float32
    assert vlm.calls == 2  # 3 conversations, batch size 2
    for conv, row in zip(convs, got, strict=True):
        torch.testing.assert_close(row, naive_logits := naive_last_logits(vlm, conv), atol=1e-5, rtol=1e-5)
        assert naive_logits.shape == row.shape


def test_last_logits_carries_gradients(vlm):
    convs = conversations()[:2]
    with torch.enable_grad():
        z = vlm.last_logits(convs)
        assert z.requires_grad
        z[:, vlm.token_id("yes")].sum().backward()
    grads = [p.grad for p in vlm.model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    vlm.model.zero_grad(set_to_none=True)


def test_image_sources_are_equivalent(vlm, tmp_path):
    img = colour_image((10, 200, 30), (50, 35))
    path = tmp_path / "x.png"
    img.save(path)

    def conv(src):
        return [{"role": "user", "content": [{"type": "image", "image": src}, {"type": "text", "text": "?"}]}]

    ref = vlm.encode(conv(img))
    for src in (str(path), f"file://{path}", path.read_bytes(), Item("p", image=str(path))):
        enc = vlm.encode(conv(src))
        assert torch.equal(enc.inputs["input_ids"], ref.inputs["input_ids"])
        torch.testing.assert_close(enc.inputs["pixel_values"], ref.inputs["pixel_values"])
    assert ref.images == 1


def test_pixel_budget_sets_image_tokens(model_dir):
    img = colour_image("red", (112, 112))
    conv = [{"role": "user", "content": [{"type": "image", "image": img}]}]
    default = VLM(str(model_dir), device="cpu")
    small = VLM(str(model_dir), device="cpu", max_pixels=2 * 28 * 28)
    pad = default.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    n_default = int((default.encode(conv).inputs["input_ids"] == pad).sum())
    n_small = int((small.encode(conv).inputs["input_ids"] == pad).sum())
    assert (default.min_pixels, default.max_pixels) == (28 * 28, 56 * 56)  # read from the processor
    assert n_default == 4 and n_small == 1  # 56x56 -> 2x2 merged patches; 28x28 -> 1
    with pytest.raises(ImageLoadError, match="aspect ratio"):  # qwen-vl-utils refuses ratios over 200
        default.encode([{"role": "user", "content": [{"type": "image", "image": colour_image("red", (2000, 5))}]}])
    with pytest.raises(ValueError):
        VLM(str(model_dir), device="cpu", min_pixels=10_000, max_pixels=100)


def test_generate_greedy_equals_one_by_one_hf_generate(vlm):
    convs = conversations()
    got = vlm.generate(convs, max_new_tokens=6)
    for conv, text in zip(convs, got, strict=True):
        enc = vlm.encode(conv)
        with torch.no_grad():
            seq = vlm.model.generate(
                **enc.inputs, max_new_tokens=6, do_sample=False, eos_token_id=vlm.eos_ids, pad_token_id=vlm.pad_id
            )
        new = [t for t in seq[0, enc.length :].tolist()]
        cut = next((k for k, t in enumerate(new) if t in vlm.eos_ids), len(new))
        assert text == vlm.tokenizer.decode(new[:cut], skip_special_tokens=True)


def test_sampling_is_seeded_locally(vlm):
    convs = conversations()
    state = torch.get_rng_state()
    a = vlm.generate(convs, max_new_tokens=8, temperature=1.0, seed=[1, 2, 3])
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is never touched
    b = vlm.generate(convs[::-1], max_new_tokens=8, temperature=1.0, seed=[3, 2, 1])
    assert b[::-1] == a  # a conversation's sample does not depend on its batch neighbours
    c = vlm.generate(convs, max_new_tokens=8, temperature=1.0, seed=[7, 8, 9])
    assert c != a
    with pytest.raises(ValueError):
        vlm.generate(convs, max_new_tokens=2, temperature=1.0, seed=[1])


def test_context_length_is_enforced(model_dir):
    short = VLM(str(model_dir), device="cpu", max_length=20)
    conv = conversations()[1]
    with pytest.raises(ContextLengthError, match="max_length=20"):
        short.next_token_logits([conv])
    enc = short.encode(conv)
    roomy = VLM(str(model_dir), device="cpu", max_length=enc.length + 4)
    roomy.next_token_logits([enc])
    with pytest.raises(ContextLengthError, match="new tokens"):
        roomy.generate([enc], max_new_tokens=5)


def test_bad_image_raises_typed_error_naming_file(vlm, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    conv = [{"role": "user", "content": [{"type": "image", "image": str(bad)}]}]
    with pytest.raises(ImageLoadError, match=r"broken\.png"):
        vlm.encode(conv)


def test_missing_model_is_one_clear_line(tmp_path):
    with pytest.raises(ModelNotFoundError) as e:
        VLM(str(tmp_path / "no-such-model"), device="cpu")
    assert "no-such-model" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelNotFoundError) as e:
        VLM("nobody/no-such-vlm", device="cpu")  # a hub id, offline in tests
    msg = str(e.value)
    assert "nobody/no-such-vlm" in msg and "local folder" in msg and "\n" not in msg


def test_get_vlm_shares_instances(model_dir):
    clear_vlm_cache()
    a = get_vlm(str(model_dir), device="cpu")
    assert get_vlm(str(model_dir), device="cpu") is a
    assert get_vlm(str(model_dir), device="cpu", batch_size=1) is not a
    clear_vlm_cache()


def _save_random_lora(model_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(model_dir)
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    peft_model.save_pretrained(out)
    return out


def test_lora_adapter_reloads_merged_and_unmerged(model_dir, tmp_path):
    adapter = _save_random_lora(model_dir, tmp_path / "adapter")
    convs = conversations()
    base = VLM(str(model_dir), device="cpu").next_token_logits(convs)
    plain = VLM(str(model_dir), device="cpu", adapter=str(adapter))
    unmerged = plain.next_token_logits(convs)
    merged = VLM(str(model_dir), device="cpu", adapter=str(adapter), merge_adapter=True).next_token_logits(convs)
    as_model = VLM(str(adapter), device="cpu")  # an adapter folder names its base model
    assert not torch.allclose(base, unmerged, atol=1e-4)  # the adapter changes the scores
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(as_model.next_token_logits(convs), unmerged, atol=1e-6, rtol=1e-6)
    for conv, row in zip(convs, unmerged, strict=True):  # independent: the PEFT model's own full forward
        torch.testing.assert_close(row, naive_last_logits(plain, conv), atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelNotFoundError, match="adapter"):
        VLM(str(model_dir), device="cpu", adapter=str(tmp_path / "missing-adapter"))
