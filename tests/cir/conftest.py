"""Shared tiny models and the synthetic CIR set for the composed-retrieval tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import torch

from mmrank.cir.synthetic import synthetic_cir


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    from mmrank.encoders.clip import OpenCLIPEncoder
    from tests.tiny_vision import register_tiny_open_clip

    torch.manual_seed(0)
    return OpenCLIPEncoder(register_tiny_open_clip(tmp_path_factory.mktemp("clipcfg")), device="cpu", batch_size=16)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    from mmrank.llm.vlm import VLM
    from tests.tiny_vlm import save_tiny_qwen2_vl

    return VLM(str(save_tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2vl"))), device="cpu", batch_size=4)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """(gallery, queries, qrels): 8 real photos x 4 edits, 40 images, 32 queries."""
    return synthetic_cir(tmp_path_factory.mktemp("syn"), size=48)


class ScriptedVLM:
    """Stands in for the VLM's *generation* only, in tests of the algorithms around it: records every
    conversation and answers with ``respond(conversation)``; ``max_pixels`` as the real backend exposes it."""

    def __init__(self, respond: Callable[[list[dict[str, Any]]], str], max_pixels: int = 1280 * 28 * 28) -> None:
        self.respond = respond
        self.max_pixels = max_pixels
        self.conversations: list[list[dict[str, Any]]] = []
        self.calls = 0

    def generate(self, conversations, *, max_new_tokens=256, temperature=0.0, top_p=1.0, seed=0):
        self.calls += 1
        self.conversations += list(conversations)
        self.last_max_new_tokens = max_new_tokens
        return [self.respond(c) for c in conversations]


def user_text(conv) -> str:
    return next(p["text"] for p in conv[-1]["content"] if p["type"] == "text")


def images(conv) -> list:
    return [p["image"] for p in conv[-1]["content"] if p["type"] == "image"]


def dump(conv) -> str:
    return json.dumps([{**m, "content": m["content"] if isinstance(m["content"], str) else "..."} for m in conv])
