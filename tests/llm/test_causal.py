"""CausalLM backend against naive single-prompt computations on a tiny Qwen2 saved to disk."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmrank.errors import ContextLengthError
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.llm.loading import resolve_dtype, source_kwargs
from mmrank.llm.tokens import LabelTokenError
from tests.tiny_text import save_tiny_qwen

torch.set_num_threads(1)

TEXTS = ["The cat sat on the mat.", "Dogs bark at night and the cat sat", "Paris", "What is the capital of France?"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> CausalLM:
    path = save_tiny_qwen(tmp_path_factory.mktemp("qwen"))
    return CausalLM(str(path), batch_size=3, device="cpu")


def prompts(lm: CausalLM) -> list[str]:
    return [lm.chat([{"role": "user", "content": t}]) for t in TEXTS]


def naive_logits(lm: CausalLM, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(torch.tensor([ids])).logits[0].float()


def test_chat_applies_template(lm):
    text = lm.chat([{"role": "user", "content": "hi"}])
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert not lm.chat([{"role": "user", "content": "hi"}], add_generation_prompt=False).endswith("assistant\n")


def test_next_token_logits_batched_equals_one_by_one(lm):
    ps = prompts(lm)
    calls = lm.calls
    got = lm.next_token_logits(ps)
    assert lm.calls - calls == 2  # 4 prompts, batch size 3
    for i, p in enumerate(ps):
        ref = naive_logits(lm, lm.encode(p))[-1]
        torch.testing.assert_close(got[i], ref, atol=1e-5, rtol=1e-5)


def test_prefix_cache_equals_full_forward_of_same_tokens(lm):
    ps = prompts(lm)
    pre = ps[0][: ps[0].index("user\n") + len("user")]  # the shared system + "user" part
    got = lm.next_token_logits(ps, prefixes=[pre] * len(ps))
    for i, p in enumerate(ps):
        ids = lm.encode(pre) + lm.encode(p[len(pre) :])
        torch.testing.assert_close(got[i], naive_logits(lm, ids)[-1], atol=1e-5, rtol=1e-5)
    # prompt equal to its prefix, and mixed prefixes, keep input order
    mixed = lm.next_token_logits([ps[1], pre, ps[2]], prefixes=[pre, pre, ""])
    torch.testing.assert_close(mixed[1], naive_logits(lm, lm.encode(pre))[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[2], naive_logits(lm, lm.encode(ps[2]))[-1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        lm.next_token_logits(ps[:1], prefixes=["not a prefix"])


def test_continuation_logprobs_equals_naive(lm):
    ps, conts = prompts(lm)[:3], ["yes", "the cat sat", "Paris is"]
    got = lm.continuation_logprobs(ps, conts)
    for p, c, g in zip(ps, conts, got, strict=True):
        pi, ci = lm.encode(p), lm.encode(c)
        lp = torch.log_softmax(naive_logits(lm, pi + ci), dim=-1)
        ref = [float(lp[len(pi) - 1 + t, tok]) for t, tok in enumerate(ci)]
        np.testing.assert_allclose(g, ref, atol=1e-5)
    with pytest.raises(ValueError):
        lm.continuation_logprobs(ps[:1], [""])


def test_last_hidden_states_equals_naive(lm):
    got = lm.last_hidden_states(TEXTS)
    for i, t in enumerate(TEXTS):
        with torch.no_grad():
            h = lm.model(torch.tensor([lm.encode(t)]), output_hidden_states=True).hidden_states[-1][0, -1]
        torch.testing.assert_close(got[i], h.float(), atol=1e-5, rtol=1e-5)


def naive_greedy(lm: CausalLM, ids: list[int], n: int) -> list[int]:
    out: list[int] = []
    for _ in range(n):
        tok = int(naive_logits(lm, ids + out)[-1].argmax())
        if tok in lm.eos_ids:
            break
        out.append(tok)
    return out


def test_greedy_generation_equals_naive_loop_and_ignores_batching(lm):
    ps = prompts(lm)
    gens = lm.generate_detailed(ps, max_new_tokens=4)
    for p, g in zip(ps, gens, strict=True):
        ref = naive_greedy(lm, lm.encode(p), 4)
        assert g.token_ids == ref
        assert g.text == lm.tokenizer.decode(ref, skip_special_tokens=True)
        # log-probabilities of the chosen tokens under the raw logits
        ids = lm.encode(p)
        for t, (tok, lp) in enumerate(zip(g.token_ids, g.logprobs, strict=True)):
            ref_lp = float(torch.log_softmax(naive_logits(lm, ids + g.token_ids[:t])[-1], -1)[tok])
            assert lp == pytest.approx(ref_lp, abs=1e-4)
    assert lm.generate(ps, max_new_tokens=4) == [g.text for g in gens]


def test_sampling_is_deterministic_given_seed(lm):
    ps = prompts(lm)
    a = lm.generate(ps, max_new_tokens=5, temperature=1.0, top_p=0.9, seed=3)
    b = lm.generate(ps, max_new_tokens=5, temperature=1.0, top_p=0.9, seed=3)
    assert a == b


def test_token_id_single_and_multi(lm):
    yes = lm.token_id("yes")
    assert lm.tokenizer.decode([yes]) == "yes"
    with pytest.raises(LabelTokenError):
        lm.token_id("10")  # digits are split one by one, as in Qwen's tokenizer


def test_prompts_are_never_cut_silently(tmp_path_factory, lm):
    small = CausalLM(lm.name, max_length=8, device="cpu")
    p = prompts(small)[0]
    for call in (
        lambda: small.next_token_logits([p]),
        lambda: small.next_token_logits([p], prefixes=[p[:5]]),
        lambda: small.last_hidden_states([p]),
        lambda: small.continuation_logprobs([p], ["yes"]),
        lambda: small.generate([p[:20]], max_new_tokens=8),  # fits alone, not with the new tokens
    ):
        with pytest.raises(ContextLengthError, match="exceeds max_length 8"):
            call()
    assert not hasattr(small, "truncated")
    assert small.truncate_text("The cat sat on the mat.", 2) == small.tokenizer.decode(small.encode("The cat sat")[:2])


def test_shared_instances(lm):
    a = get_causal_lm(lm.name, device="cpu")
    assert get_causal_lm(lm.name, device="cpu") is a
    assert get_causal_lm(lm.name, device="cpu", max_length=16) is not a


def test_source_resolution(tmp_path):
    assert source_kwargs("org/repo", None) == ("org/repo", {})
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ValueError):
        resolve_dtype("int3", torch.device("cpu"))


def test_gguf_source_resolution(tmp_path):
    pytest.importorskip("gguf")
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    assert source_kwargs(str(g), None) == (str(tmp_path), {"gguf_file": "m.gguf"})
    assert source_kwargs("org/repo", str(g)) == (str(tmp_path), {"gguf_file": "m.gguf"})
    assert source_kwargs("org/repo", "q4.gguf") == ("org/repo", {"gguf_file": "q4.gguf"})


def test_generation_leaves_the_global_rng_alone(lm):
    ps = prompts(lm)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    lm.generate(ps, max_new_tokens=5, temperature=1.0, top_p=0.9, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # not reseeded, not consumed
    assert torch.equal(torch.rand(3), expected)


def test_nucleus_of_one_token_is_greedy(lm):
    ps = prompts(lm)
    greedy = lm.generate(ps, max_new_tokens=4)
    assert lm.generate(ps, max_new_tokens=4, temperature=0.7, top_p=1e-9, seed=5) == greedy


@pytest.mark.parametrize("last_only", [False, True])
def test_span_attention_equals_eager_attention_maps(lm, last_only):
    ids = lm.encode(lm.chat([{"role": "user", "content": "The cat sat on the mat. Where is the cat?"}]))
    n_ctx = len(ids) - 6
    eager = CausalLM(lm.name, device="cpu")  # a separate instance: the shared one is never switched
    eager.model.set_attn_implementation("eager")
    with torch.no_grad():
        att = eager.model(torch.tensor([ids]), output_attentions=True).attentions
    rows = slice(len(ids) - 1, len(ids)) if last_only else slice(n_ctx, len(ids))
    ref = sum(a[0, :, rows, :].double().mean(dim=1).sum(dim=0) for a in att)
    impl = lm.model.config._attn_implementation
    got = lm.span_attention(lm.prefix_cache(ids[:n_ctx]), n_ctx, ids[n_ctx:], last_only=last_only)
    assert lm.model.config._attn_implementation == impl
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


def test_span_attention_is_float32_even_for_a_bf16_model(lm):
    bf = CausalLM(lm.name, device="cpu", dtype="bf16")
    ids = bf.encode(bf.chat([{"role": "user", "content": "Paris is the capital of France. Capital?"}]))
    a = bf.span_attention(bf.prefix_cache(ids[:-5]), len(ids) - 5, ids[-5:])
    cfg = bf.model.config
    # each softmax row sums to 1 in float32: the total is layers x heads to float32 precision (bf16 gives ~1e-2)
    assert float(a.sum()) == pytest.approx(cfg.num_hidden_layers * cfg.num_attention_heads, abs=1e-4)
