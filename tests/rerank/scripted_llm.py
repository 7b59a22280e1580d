"""A scripted chat-LLM test double for the generative rerankers' algorithm tests.

It stands in for the *model* only: ``chat`` serialises the messages (so a test can read exactly what the
reranker sent) and ``generate`` answers each prompt with a test-supplied function. Documents in the tests
carry their true relevance as a token ``rel<k>``, so an "oracle" answer can be computed from the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

Messages = list[dict[str, Any]]


class ScriptedLLM:
    def __init__(self, respond: Callable[[Messages], str]) -> None:
        self.respond = respond
        self.batches: list[list[Messages]] = []
        self.gen_kwargs: list[dict[str, Any]] = []
        self.calls = 0

    def chat(self, messages: Messages, *, add_generation_prompt: bool = True) -> str:
        return json.dumps(messages)

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[str]:
        convs = [json.loads(p) for p in prompts]
        self.batches.append(convs)
        self.gen_kwargs.append(
            {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
        )
        self.calls += 1
        return [self.respond(c) for c in convs]

    @property
    def prompts(self) -> list[Messages]:
        return [c for b in self.batches for c in b]


def numbered_docs(messages: Messages) -> dict[int, str]:
    """``{label: text}`` for every ``[i] text`` / ``[i]. text`` line in the user messages."""
    out: dict[int, str] = {}
    for m in messages:
        if m["role"] != "user":
            continue
        for label, text in re.findall(r"^\[(\d+)\]\.? (.*)$", m["content"], flags=re.M):
            out[int(label)] = text
    return out


def rel(text: str) -> int:
    m = re.search(r"rel(\d+)", text)
    assert m, f"test document without rel<k> token: {text!r}"
    return int(m.group(1))


def oracle_ranking(messages: Messages) -> list[int]:
    """Labels of the numbered documents sorted by true relevance (ties: lower label first)."""
    docs = numbered_docs(messages)
    return sorted(docs, key=lambda i: (-rel(docs[i]), i))
