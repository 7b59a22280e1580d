"""Listwise reranking with a sliding window: RankGPT and ReasonRank.

* RankGPT -- Sun et al., "Is ChatGPT Good at Search? Investigating Large Language Models as Re-Ranking Agents",
  EMNLP 2023, arXiv 2304.09542. Permutation generation over a window of 20 passages moved bottom-up with step 10;
  prompt in ``mmrank/prompts/rankgpt.yaml`` (from the official ``rank_gpt.py``).
* ReasonRank -- Liu et al., "ReasonRank: Empowering Passage Ranking with Strong Reasoning Ability",
  arXiv 2508.07050. Same window, a reasoning prompt answering ``<think>..</think> <answer>[] > []</answer>``;
  prompt in ``mmrank/prompts/reasonrank.yaml``; generation greedy, 3072 + 100 new tokens.

The window schedule is rank_llm's (which ReasonRank uses): windows ``[n-w, n)``, ``[n-w-s, n-s)``, ... toward
the top; the window that reaches rank 0 is clipped to start there and is the last one. (Unlike rank_llm's loop
condition, a list of ``n = w - s`` candidates still gets its one window.) Batching: round ``r``
processes the ``r``-th window of every query in one batched generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrank.errors import ContextLengthError
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome
from mmrank.rerank.generative import (
    ChatLLM,
    GenerativeReranker,
    bracket_numbers_to_parens,
    query_text,
    truncate_tokens,
    truncate_words,
)
from mmrank.rerank.parsing import extract_answer, parse_permutation
from mmrank.types import Hit, Query


def sliding_windows(n: int, window: int = 20, step: int = 10) -> list[tuple[int, int]]:
    """The ``[start, end)`` windows visited, in order, for a list of ``n`` candidates (bottom-up).

    ``n <= window`` gives one window ``(0, n)``. For ``n=100, window=20, step=10``: ``(80,100), (70,90), ...,
    (0,20)`` -- 9 windows. For ``n=7, window=4, step=2``: ``(3,7), (1,5), (0,3)``.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    if not 1 <= step <= window:
        raise ValueError(f"step must be in [1, window], got {step}")
    if n <= 0:
        return []
    out = []
    end, start = n, n - window
    while True:
        out.append((max(start, 0), end))
        if start <= 0:
            return out
        end -= step
        start -= step


class ListwiseReranker(GenerativeReranker):
    """RankGPT sliding-window listwise reranker (arXiv 2304.09542).

    Args:
        model: hub id or local path of a chat LLM (or pass ``lm=``).
        window, step: sliding window size and stride (paper: 20 and 10), moved from the bottom up.
        max_new_tokens: generation budget per window; ``None`` = the token length of a full answer
            ``"[1] > [2] > ... > [w]"`` (as rank_llm does).
        max_words: passages are cut to their first ``max_words`` words (official code: 300).
        temperature: 0 = greedy (paper setting).

    Output reading (:func:`~mmrank.rerank.parsing.parse_permutation`, rank_llm's rules): only the text after the last
    ``</think>`` when a reasoning model writes one; every run of digits is an id. Fallbacks recorded per window: ids
    repaired (duplicates / out of range dropped, missing appended in the window's input order) and
    "no valid id in output, kept input order".
    """

    name = "rankgpt"
    supports_fusion = False
    prompt_name = "rankgpt"

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: ChatLLM | None = None,
        window: int = 20,
        step: int = 10,
        max_new_tokens: int | None = None,
        max_words: int | None = None,
        temperature: float = 0.0,
        device: str | None = None,
        seed: int = 0,
        **lm_kw: Any,
    ) -> None:
        super().__init__(model, lm=lm, device=device, seed=seed, **lm_kw)
        sliding_windows(window, window, step)  # validates window and step
        self.window = window
        self.step = step
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.prompt = load_prompt(self.prompt_name)
        self.max_words = int(max_words if max_words is not None else self.prompt.defaults.get("max_words", 300))

    # ------------------------------------------------------------------ prompt and parsing
    def passage(self, text: str) -> str:
        return truncate_words(text.replace("Title: Content: ", "").strip(), self.max_words)

    def build_messages(self, query: str, passages: Sequence[str]) -> list[dict[str, str]]:
        """The RankGPT conversation for one window (``passages`` already truncated)."""
        p, num = self.prompt, len(passages)
        msgs = [
            {"role": "system", "content": p.render_system(num=num, query=query) or ""},
            {"role": "user", "content": p.render(num=num, query=query)},
            {"role": "assistant", "content": p.render_extra("prefix_assistant")},
        ]
        for rank, content in enumerate(passages, start=1):
            msgs.append({"role": "user", "content": p.render_extra("passage_user", rank=rank, content=content)})
            msgs.append({"role": "assistant", "content": p.render_extra("passage_assistant", rank=rank)})
        msgs.append({"role": "user", "content": p.render_extra("post_user", num=num, query=query)})
        return msgs

    def parse(self, output: str, n: int) -> tuple[list[int], list[str]]:
        """Order of the ``n`` window passages (0-based, best first) and the notes to record."""
        p = parse_permutation(output, n)
        return p.order, p.notes()

    def _budget(self, n: int) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        answer = " > ".join(f"[{i + 1}]" for i in range(n))
        tok = self.tokenizer
        if tok is None:
            return 2 * len(answer)
        return len(tok.encode(answer, add_special_tokens=False)) + 1

    def _window_messages(self, query: str, passages: list[str], budget: int) -> tuple[list[dict[str, str]], str | None]:
        """Messages for one window; passages are cut further (in words) when the prompt plus ``budget`` new
        tokens would exceed the backend's ``max_length`` (RankGPT shrinks passages the same way)."""
        msgs = self.build_messages(query, passages)
        limit = getattr(self.lm, "max_length", None)
        tok = self.tokenizer
        if limit is None or tok is None:
            return msgs, None
        limit -= budget

        def count(m: list[dict[str, str]]) -> int:
            return len(tok.encode(self.lm.chat(m), add_special_tokens=False))

        n_tok = count(msgs)
        if n_tok <= limit:
            return msgs, None
        words = max((len(p.split()) for p in passages), default=1)
        while n_tok > limit and words > 0:
            words = max(0, min(words - 1, int(words * limit / n_tok)))
            msgs = self.build_messages(query, [truncate_words(p, words) for p in passages])
            n_tok = count(msgs)
        if n_tok > limit:
            raise ContextLengthError(
                f"{self.name}: a window of {len(passages)} empty passages needs {n_tok} tokens > max_length "
                f"{limit + budget} - {budget} new tokens; raise max_length or lower window"
            )
        return msgs, f"passages cut to {words} words to fit max_length"

    # ------------------------------------------------------------------ the window engine
    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        orders = [list(range(len(hits))) for _q, hits in jobs]
        texts = [[self.passage(t) for t in self._texts(hits)] for _q, hits in jobs]
        queries = [query_text(q) for q, _h in jobs]
        plans = [sliding_windows(len(hits), self.window, self.step) for _q, hits in jobs]
        calls = [0] * len(jobs)
        notes: list[list[str]] = [[] for _ in jobs]
        for r in range(max((len(p) for p in plans), default=0)):
            active = [(qi, plans[qi][r]) for qi in range(len(jobs)) if r < len(plans[qi])]
            budget = self._budget(max(b - a for _qi, (a, b) in active))
            convs = []
            for qi, (a, b) in active:
                msgs, cut = self._window_messages(queries[qi], [texts[qi][i] for i in orders[qi][a:b]], budget)
                convs.append(msgs)
                if cut:
                    notes[qi].append(f"{self.name} window {a}-{b}: {cut}")
            outs = self._complete(convs, max_new_tokens=budget, temperature=self.temperature)
            for (qi, (a, b)), out in zip(active, outs, strict=True):
                perm, why = self.parse(out, b - a)
                seg = orders[qi][a:b]
                orders[qi][a:b] = [seg[j] for j in perm]
                calls[qi] += 1
                notes[qi] += [f"{self.name} window {a}-{b}: {w}" for w in why]
        return [Outcome(o, None, model_calls=c, fallbacks=f) for o, c, f in zip(orders, calls, notes, strict=True)]


class ReasonRankReranker(ListwiseReranker):
    """ReasonRank (arXiv 2508.07050): reasoning listwise reranking in the RankGPT sliding window.

    Defaults follow the paper for TREC/BEIR: window 20, step 10, greedy, ``max_new_tokens=3072+100``,
    passages cut to ``max_tokens=100`` tokenizer tokens (512 for BRIGHT), ``[n]`` -> ``(n)`` in query and passages.
    Parsing: the ``<think>..</think> <answer>..</answer>`` body (lower-cased); else the text after the last
    ``<answer>`` (official); else ids are read from the text after the last ``</think>`` (rank_llm), or the whole
    output when there is none (official) -- unless ``answer_required=True``, which keeps the window order instead.
    Every such case is recorded as a fallback. Ids are read by :func:`~mmrank.rerank.parsing.parse_permutation`.
    Checkpoints: ``liuwenhan/reasonrank-7B`` / ``-32B`` (Qwen2.5-Instruct).
    """

    name = "reasonrank"
    prompt_name = "reasonrank"

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: ChatLLM | None = None,
        window: int = 20,
        step: int = 10,
        max_new_tokens: int | None = 3072 + 100,
        max_tokens: int | None = None,
        answer_required: bool = False,
        temperature: float = 0.0,
        device: str | None = None,
        seed: int = 0,
        **lm_kw: Any,
    ) -> None:
        lm_kw.setdefault("max_length", 8192)  # room for 20 x 100-token passages plus 3172 new tokens
        super().__init__(
            model,
            lm=lm,
            window=window,
            step=step,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            device=device,
            seed=seed,
            **lm_kw,
        )
        self.max_tokens = int(max_tokens if max_tokens is not None else self.prompt.defaults.get("max_tokens", 100))
        self.answer_required = answer_required

    def passage(self, text: str) -> str:
        try:
            from ftfy import fix_text

            text = fix_text(text)
        except ImportError:  # ftfy ships with open-clip-torch; without it the text is used as is
            pass
        content = truncate_tokens(text.strip(), self.max_tokens, self.tokenizer)
        return bracket_numbers_to_parens(content)

    def build_messages(self, query: str, passages: Sequence[str]) -> list[dict[str, str]]:
        q = bracket_numbers_to_parens(query).strip()
        block = "".join(self.prompt.render_extra("passage", rank=i, content=c) for i, c in enumerate(passages, 1))
        return self.prompt.messages(num=len(passages), query=q, passages=block)

    def parse(self, output: str, n: int) -> tuple[list[int], list[str]]:
        body, how = extract_answer(output, self.prompt.output_regex)
        notes = []
        if how == "after-answer":
            notes.append("think/answer pattern not matched, read the text after <answer>")
        elif how == "none":
            if self.answer_required:
                return list(range(n)), ["no <answer> in output, kept input order"]
            notes.append("no <answer> in output, ids read from the text after </think> (or the whole output)")
            body = output
        p = parse_permutation(body or "", n)
        return p.order, notes + p.notes()
