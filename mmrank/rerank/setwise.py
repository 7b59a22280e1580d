"""Setwise reranking by heapsort: Rank-R1.

Rank-R1 -- Zhuang et al., "Rank-R1: Enhancing Reasoning in LLM-based Document Rerankers via Reinforcement
Learning", arXiv 2503.06034 (setwise prompting: Zhuang et al., SIGIR 2024, arXiv 2310.09497). Each comparison shows
a node and its ``num_child`` children of a ``num_child``-ary max-heap and asks which document is most relevant
(``<think>..</think> <answer>[j]</answer>``); heapsort then extracts the top ``k``. Paper defaults: 20 documents per
prompt (``num_child=19``), ``k=10``, greedy decoding with up to 2048 new tokens, documents shown in a random order
in every comparison. The top ``k`` come first; the other candidates keep their first-stage order.

Batching: every query's heapsort is a coroutine (:func:`heapsort_topk`) that yields comparisons; the pending
comparison of every query goes into one batched generation per step.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from functools import partial
from typing import Any

from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome
from mmrank.rerank.generative import ChatLLM, GenerativeReranker, query_rng, query_text, truncate_tokens
from mmrank.rerank.parsing import parse_choice
from mmrank.types import Hit, Query

Comparison = Generator[list[int], int | None, list[int]]


def heapsort_topk(n: int, num_child: int, k: int) -> Comparison:
    """Setwise heapsort over candidates ``0..n-1`` (first-stage order), as in llm-rankers' ``setwise.py``.

    A ``num_child``-ary max-heap in an array: the children of slot ``i`` are slots ``c*i+1 .. c*i+c``.
    The coroutine yields each comparison as a list of candidate indices (the node first, then its children)
    and must be sent the position (in that list) of the most relevant one, or ``None`` when the answer is
    unusable (the node then stays: no swap). Building the heap visits slots ``n // c`` down to 0; then the top
    is extracted ``k`` times. Returns the final order: top-``k`` best first, the rest in first-stage order.
    """
    if num_child < 1:
        raise ValueError(f"num_child must be >= 1, got {num_child}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    c = num_child
    arr = list(range(n))

    def sift(size: int, i: int) -> Comparison:
        while c * i + 1 < size:
            slots = [i, *range(c * i + 1, min(c * i + c + 1, size))]
            best = yield [arr[s] for s in slots]
            largest = slots[best] if best is not None and 0 <= best < len(slots) else i
            if largest == i:
                break
            arr[i], arr[largest] = arr[largest], arr[i]
            i = largest
        return []

    for i in range(n // c, -1, -1):
        yield from sift(n, i)
    for ranked, end in enumerate(range(n - 1, 0, -1), start=1):
        arr[0], arr[end] = arr[end], arr[0]
        if ranked == k:
            break
        yield from sift(end, 0)
    top = list(reversed(arr))[: min(k, n)]
    chosen = set(top)
    return top + [i for i in range(n) if i not in chosen]


class SetwiseReranker(GenerativeReranker):
    """Rank-R1 setwise heapsort reranker (arXiv 2503.06034).

    Args:
        model: hub id or path of the LLM (Rank-R1 checkpoints are LoRA adapters ``ielabgroup/Rank-R1-{3,7,14}B-v0.1``
            on Qwen2.5-Instruct: merge them first, or pass ``lm=``).
        num_child: children per heap node; a prompt holds up to ``num_child + 1`` documents (paper: 19).
        k: how many top documents heapsort extracts (paper: 10).
        shuffle: show the documents of each comparison in a random order (official code), seeded per query.
        max_new_tokens: generation budget per comparison (paper: 2048).
        max_doc_tokens, max_query_tokens: truncation in tokenizer tokens (TREC: 512 / 32).
        max_length: the context (default 32768, the official code's vLLM default for Qwen2.5); a comparison that
            does not fit with ``max_new_tokens`` has its documents cut to a common token length (recorded).

    A comparison whose answer is not exactly ``[j]`` inside the think/answer tags keeps the node (no swap),
    as the official code does; the count of such comparisons is recorded as a fallback.
    """

    name = "rank-r1"
    supports_fusion = False

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: ChatLLM | None = None,
        num_child: int = 19,
        k: int = 10,
        shuffle: bool = True,
        max_new_tokens: int = 2048,
        max_doc_tokens: int | None = None,
        max_query_tokens: int | None = None,
        temperature: float = 0.0,
        device: str | None = None,
        seed: int = 0,
        **lm_kw: Any,
    ) -> None:
        lm_kw.setdefault("max_length", 32768)  # official: vLLM's default, the model's context (Qwen2.5: 32K)
        super().__init__(model, lm=lm, device=device, seed=seed, **lm_kw)
        if num_child < 1 or k < 1:
            raise ValueError("num_child and k must be >= 1")
        self.num_child = num_child
        self.k = k
        self.shuffle = shuffle
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.prompt = load_prompt("rank_r1")
        d = self.prompt.defaults
        self.max_doc_tokens = int(max_doc_tokens if max_doc_tokens is not None else d.get("max_doc_tokens", 512))
        self.max_query_tokens = int(max_query_tokens if max_query_tokens is not None else d.get("max_query_tokens", 32))

    def build_messages(self, query: str, docs: Sequence[str]) -> list[dict[str, str]]:
        """The Rank-R1 conversation for one comparison; ``docs`` in the order shown, labelled ``[1]..``."""
        block = "\n".join(self.prompt.render_extra("doc", label=i, text=t) for i, t in enumerate(docs, start=1))
        return self.prompt.messages(query=query, docs=block)

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        tok = self.tokenizer
        texts = [[truncate_tokens(t, self.max_doc_tokens, tok) for t in self._texts(h, "plain")] for _q, h in jobs]
        queries = [truncate_tokens(query_text(q), self.max_query_tokens, tok) for q, _h in jobs]
        rngs = [query_rng(self.seed, q, "setwise") for q, _h in jobs]
        sorts = [heapsort_topk(len(h), self.num_child, self.k) for _q, h in jobs]
        calls = [0] * len(jobs)
        bad = [0] * len(jobs)
        cuts = [0] * len(jobs)
        orders: list[list[int] | None] = [None] * len(jobs)
        pending: dict[int, list[int]] = {}

        def advance(qi: int, answer: int | None, first: bool = False) -> None:
            try:
                pending[qi] = next(sorts[qi]) if first else sorts[qi].send(answer)
            except StopIteration as stop:
                orders[qi] = stop.value
                pending.pop(qi, None)

        for qi in range(len(jobs)):
            advance(qi, None, first=True)
        while pending:
            batch = sorted(pending)
            shown: list[list[int]] = []
            convs = []
            for qi in batch:
                cand = pending[qi]
                perm = rngs[qi].sample(range(len(cand)), len(cand)) if self.shuffle else list(range(len(cand)))
                shown.append(perm)
                msgs, cut = self.fit_documents(
                    partial(self.build_messages, queries[qi]),
                    [texts[qi][cand[p]] for p in perm],
                    reserve=self.max_new_tokens,
                    cut=lambda d, n: truncate_tokens(d, n, tok),
                    size=lambda d: len(tok.tokenize(d)) if tok is not None else len(d.split()),
                    unit="tokens",
                )
                if cut:
                    cuts[qi] += 1
                convs.append(msgs)
            outs = self._complete(convs, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
            for qi, perm, out in zip(batch, shown, outs, strict=True):
                calls[qi] += 1
                j = parse_choice(out, len(perm), self.prompt.output_regex)
                if j is None:
                    bad[qi] += 1
                advance(qi, None if j is None else perm[j])
        result = []
        for qi, order in enumerate(orders):
            assert order is not None
            notes = []
            if bad[qi]:
                notes.append(f"rank-r1: {bad[qi]} of {calls[qi]} comparisons unparseable, kept the parent (no swap)")
            if cuts[qi]:
                notes.append(f"rank-r1: documents cut to fit max_length in {cuts[qi]} of {calls[qi]} comparisons")
            result.append(Outcome(order, None, model_calls=calls[qi], fallbacks=notes))
        return result
