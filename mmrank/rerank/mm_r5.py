"""MM-R5: reasoning listwise reranking of page images (Xu et al., "MM-R5: MultiModal Reasoning-Enhanced ReRanker via
Reinforcement Learning for Document Retrieval", arXiv 2506.12364; checkpoint ``i2vec/MM-R5`` on Qwen2.5-VL-7B).

One generation per query over all candidates: the system prompt and the user prompt of the official inference code
(``mmrank/prompts/mm_r5.yaml``), then for each candidate ``i`` the text part ``"\\nImage {i}: "`` and its image part.
The model answers ``<think>...</think><answer>[3, 1, 2]</answer>``; :func:`parse_mm_r5` reads it. Sampling defaults
of the official code: ``do_sample=True``, ``temperature=0.3``, ``max_new_tokens=8192`` (override for speed). With a
VLM each window's generation is seeded by ``(seed, query id, window)`` with a local generator (independent of
batching); a text LLM's batch shares one seed, drawn the same way, and the caller's global random state is restored.
Sampling parameters are exactly those given: the checkpoint's ``generation_config`` (e.g. a ``top_k`` or
``repetition_penalty`` that the official ``model.generate`` call would pick up) is not applied [gap: the official
script relies on it implicitly].

**Backbones.** A VLM (:class:`~mmrank.llm.vlm.VLM`, detected from the model's config) sees the candidates' images;
a candidate without an image (``candidate="auto"``) or every candidate (``candidate="text"``) shows its text after
``"Image i: "`` instead. A text LLM (:class:`~mmrank.llm.causal.CausalLM`) gets the same prompt shape as one string,
each image replaced by the candidate's text (page text layer / OCR), cut to ``max_text_tokens`` tokens.

**Budget and windows.** A prompt must fit ``max_length`` tokens together with ``max_new_tokens``, and (optional)
its images ``max_total_pixels``. When the whole list does not fit (or exceeds ``window`` candidates), the list is
split RankGPT-style: the window size ``w`` is the largest number of candidates whose costliest ``w`` fit the
budget (token cost of each candidate measured alone, label included), the step ``w // 2`` (or ``step``), and the
windows move from the bottom of the list up (:func:`mmrank.rerank.listwise.sliding_windows`), each reordering its
slice in place, so the best candidates bubble to the top. A budget split is recorded as a fallback; a budget that
fits fewer than two candidates keeps the input order (recorded).

**Bad input.** A candidate image that fails to load (or a candidate with nothing to show) is left out of the
prompt and placed after the ranked candidates, in input order (recorded). Parse repairs and the identity order on
a missing answer are recorded per window. The reasoning and answer of every window are kept in
``Ranking.meta["mm-r5"]["windows"]``. Queries are processed in groups of ``batch_size``; the windows of a round
are generated in one batched call, and only one group's images are held in memory.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from mmrank.errors import ImageLoadError, MmrankError
from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.llm.vlm import VLM, Encoded, get_vlm, is_vlm
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, Reranker
from mmrank.rerank.listwise import sliding_windows
from mmrank.types import Hit, Item, Query

_OPEN, _CLOSE = "<answer>", "</answer>"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_INT = re.compile(r"[+-]?\d{1,9}")  # longer digit runs cannot be a candidate id (and int() would choke)


@dataclass(slots=True)
class MMR5Answer:
    """What :func:`parse_mm_r5` read from one generation.

    ``order`` is always a permutation of ``range(n)`` (0-based, best first). ``reasoning`` is the ``<think>`` text
    (``None`` without a think tag); ``answer`` the text inside the answer's brackets (``None`` when no answer
    list was found). The counters say what was repaired.
    """

    order: list[int]
    reasoning: str | None = None
    answer: str | None = None
    think_closed: bool = True
    n_read: int = 0
    duplicates: int = 0
    out_of_range: int = 0
    unreadable: int = 0
    missing: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """No usable id: the order is the input order."""
        return self.n_read == 0

    def notes(self) -> list[str]:
        out = []
        if not self.think_closed:
            out.append("reasoning never closed (no </think>)")
        if self.answer is None:
            out.append("no <answer>[..]</answer> in output, kept input order")
        elif self.failed:
            out.append("no valid id in answer, kept input order")
        if self.unreadable:
            out.append(f"{self.unreadable} non-integer entr{'y' if self.unreadable == 1 else 'ies'} dropped")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicate id(s) dropped")
        if self.out_of_range:
            out.append(f"{self.out_of_range} out-of-range id(s) dropped")
        if self.missing and not self.failed:
            out.append(f"{self.missing} missing id(s) appended in input order")
        return out + self.extra


def _answers(text: str) -> list[tuple[int, str]]:
    """``(position, body inside the brackets)`` of every ``<answer>[...]</answer>`` in ``text``, in order.

    One left-to-right scan: an opening tag whose body would contain another opening tag is skipped (the later
    one is taken), so the bodies are disjoint and the work is linear in ``len(text)``.
    """
    out = []
    close = -1
    i = text.find(_OPEN)
    while i != -1:
        start = i + len(_OPEN)
        if close < start:  # the closing tag only moves forward: each character is scanned a bounded number of times
            close = text.find(_CLOSE, start)
        if close == -1:
            break
        nxt = text.find(_OPEN, start)
        if nxt != -1 and nxt < close:
            i = nxt
            continue
        body = text[start:close].strip()
        if body.startswith("[") and body.endswith("]"):
            out.append((i, body[1:-1]))
        i = text.find(_OPEN, close + len(_CLOSE))
    return out


def parse_mm_r5(text: str | None, n: int) -> MMR5Answer:
    """Read MM-R5's ``<think>..</think><answer>[ids]</answer>`` for ``n`` candidates (linear time).

    The official rule (``re.search(r'<answer>\\[(.*?)\\]</answer>')``, ids split on commas, ``int(x) - 1``, ids
    outside ``[0, n)`` dropped, the ids never output appended in ascending order, identity when nothing matches)
    with these documented repairs: whitespace is allowed around the brackets and newlines inside them; the first
    answer after a closed ``</think>`` is preferred (so an answer-format example echoed inside the reasoning is not
    taken), else the first answer anywhere; duplicate ids keep their first occurrence; entries that are not
    integers are dropped instead of voiding the whole answer. A reasoning that never closes is kept up to the
    answer (or the end) and noted.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    text = text or ""
    reasoning: str | None = None
    think_end, closed = 0, True
    t0 = text.find(_THINK_OPEN)
    if t0 != -1:
        s = t0 + len(_THINK_OPEN)
        t1 = text.find(_THINK_CLOSE, s)
        if t1 == -1:
            closed = False
            a = text.find(_OPEN, s)
            reasoning = text[s : a if a != -1 else len(text)].strip()
        else:
            reasoning = text[s:t1].strip()
            think_end = t1 + len(_THINK_CLOSE)
    found = _answers(text)
    chosen = next((b for p, b in found if p >= think_end), None) if closed and t0 != -1 else None
    if chosen is None and found:
        chosen = found[0][1]
    res = MMR5Answer(list(range(n)), reasoning=reasoning, answer=chosen, think_closed=closed)
    if chosen is None:
        return res
    seen: set[int] = set()
    read: list[int] = []
    for piece in chosen.split(","):
        piece = piece.strip()
        if not piece:
            continue
        if not _INT.fullmatch(piece):
            if piece.lstrip("+-").isdigit():  # a digit run too long to be an id
                res.out_of_range += 1
            else:
                res.unreadable += 1
            continue
        i = int(piece) - 1
        if not 0 <= i < n:
            res.out_of_range += 1
        elif i in seen:
            res.duplicates += 1
        else:
            seen.add(i)
            read.append(i)
    missing = [i for i in range(n) if i not in seen]
    res.order = read + missing
    res.n_read = len(read)
    res.missing = len(missing)
    return res


def _length(enc: Encoded | str, lm: VLM | CausalLM) -> int:
    """Tokens of an encoded VLM conversation or of a text LLM's templated prompt."""
    if isinstance(enc, Encoded):
        return enc.length
    assert isinstance(lm, CausalLM)
    return len(lm.encode(enc))


@dataclass
class _Query:
    """Per-query state of the window engine."""

    query: Query
    hits: list[Hit]
    payload: dict[int, Any] = field(default_factory=dict)  # candidate index -> prepared image or text
    order: list[int] = field(default_factory=list)  # shown candidates, current order
    hidden: list[int] = field(default_factory=list)  # candidates left out of the prompt, input order
    windows: list[tuple[int, int]] = field(default_factory=list)
    ready: dict[tuple[int, int], Any] = field(default_factory=dict)  # window -> its encoded prompt, when measured
    notes: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0


class MMR5Reranker(Reranker):
    """MM-R5 reasoning listwise reranker (arXiv 2506.12364); see the module docstring for the full behaviour.

    Args:
        model: hub id or local folder (default ``i2vec/MM-R5``): a VLM or a text chat LLM (``backbone="auto"``
            reads the config), or a LoRA adapter folder; or pass ``lm=`` a loaded ``VLM`` / ``CausalLM``.
        candidate: ``"auto"`` (image when the item has one, else text), ``"image"`` or ``"text"``.
        temperature, top_p, top_k, max_new_tokens: sampling (official: 0.3, 1.0, none, 8192).
        window, step: at most ``window`` candidates per prompt (default: all that fit); window step.
        max_total_pixels: pixel budget of one prompt's images (after resizing; default: no limit).
        max_text_tokens: a text candidate's text is cut to this many tokens (default 512) [gap: not in the paper].
        min_pixels, max_pixels, max_length, batch_size, device, dtype, adapter, merge_adapter: backend settings.
    """

    name = "mm-r5"
    prompt_name = "mm_r5"
    default_model = "i2vec/MM-R5"
    modalities = frozenset({"image", "image+text", "page", "text"})

    def __init__(
        self,
        model: str | None = None,
        *,
        lm: VLM | CausalLM | None = None,
        backbone: Literal["auto", "vlm", "text"] = "auto",
        candidate: Literal["auto", "image", "text"] = "auto",
        temperature: float | None = None,
        top_p: float = 1.0,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        window: int | None = None,
        step: int | None = None,
        max_total_pixels: int | None = None,
        max_text_tokens: int | None = 512,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_length: int = 32768,
        batch_size: int = 4,
        device: str | None = None,
        dtype: str = "auto",
        adapter: str | None = None,
        merge_adapter: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if candidate not in ("auto", "image", "text"):
            raise ValueError(f"candidate must be 'auto', 'image' or 'text', got {candidate!r}")
        if backbone not in ("auto", "vlm", "text"):
            raise ValueError(f"backbone must be 'auto', 'vlm' or 'text', got {backbone!r}")
        if window is not None:
            sliding_windows(window, window, step or max(1, window // 2))  # validates window and step
        self.prompt = load_prompt(self.prompt_name)
        d = self.prompt.defaults
        self.temperature = float(d["temperature"] if temperature is None else temperature)
        self.top_p = top_p
        self.top_k = top_k
        self.max_new_tokens = int(d["max_new_tokens"] if max_new_tokens is None else max_new_tokens)
        self.candidate = candidate
        self.window = window
        self.step = step
        self.max_total_pixels = max_total_pixels
        self.max_text_tokens = max_text_tokens
        self.batch_size = batch_size
        if lm is None:
            name = model or self.default_model
            use_vlm = backbone == "vlm" or (backbone == "auto" and is_vlm(name))
            if use_vlm:
                lm = get_vlm(
                    name,
                    device=device,
                    dtype=dtype,
                    min_pixels=min_pixels,
                    max_pixels=max_pixels,
                    max_length=max_length,
                    batch_size=batch_size,
                    adapter=adapter,
                    merge_adapter=merge_adapter,
                )
            else:
                if adapter is not None:
                    raise ValueError("adapter= is supported with a VLM backbone only; merge it into the text model")
                lm = get_causal_lm(name, device=device, dtype=dtype, max_length=max_length, batch_size=batch_size)
        self.lm = lm
        self.vision = isinstance(lm, VLM)

    # ------------------------------------------------------------------ prompt
    def build_messages(self, query: str, candidates: Sequence[Any]) -> list[dict[str, Any]]:
        """The MM-R5 conversation for one window: ``candidates`` are images (PIL, path, item) or strings (text).

        VLM backbone: system = one text part; user = the question part, then ``"\\nImage i: "`` + the image part
        (or a text part) per candidate. Text backbone: the same text as plain strings.
        """
        p, n = self.prompt, len(candidates)
        system = p.render_system() or ""
        head = p.render(query=query, n=n)
        labels = [p.render_extra("candidate", index=i) for i in range(1, n + 1)]
        if not self.vision:
            user = head + "".join(lab + str(c) for lab, c in zip(labels, candidates, strict=True))
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        parts: list[dict[str, Any]] = [{"type": "text", "text": head}]
        for lab, c in zip(labels, candidates, strict=True):
            parts.append({"type": "text", "text": lab})
            parts.append({"type": "text", "text": c} if isinstance(c, str) else {"type": "image", "image": c})
        return [{"role": "system", "content": [{"type": "text", "text": system}]}, {"role": "user", "content": parts}]

    # ------------------------------------------------------------------ measuring
    def _encode(self, conv: list[dict[str, Any]]) -> Encoded | str:
        """A VLM's :class:`Encoded` conversation, or a text LLM's templated prompt."""
        if isinstance(self.lm, VLM):
            return self.lm.encode(conv)
        return self.lm.chat(conv)

    def _pixels(self, c: Any) -> int:
        return 0 if isinstance(c, str) else int(c.width * c.height)

    def _fits(self, tokens: int, pixels: int) -> bool:
        if tokens + self.max_new_tokens > self.lm.max_length:
            return False
        return self.max_total_pixels is None or pixels <= self.max_total_pixels

    def _plan(self, st: _Query, query: str) -> None:
        """Choose the windows of one query (see the module docstring)."""
        m = len(st.order)
        if m < 2:
            return
        limit = min(self.window or m, m)
        cands = [st.payload[i] for i in st.order]
        if limit == m:
            full = self._encode(self.build_messages(query, cands))
            if self._fits(_length(full, self.lm), sum(self._pixels(c) for c in cands)):
                st.windows = [(0, m)]
                st.ready[(0, m)] = full  # reused by the first round: images are processed once
                return
        # token cost of each candidate alone (label and image); digits widened to m's, so the sums are upper bounds
        wide = len(str(m)) - 1
        base = _length(self._encode(self.build_messages(query, [])), self.lm) + 2 * wide
        empty = _length(self._encode(self.build_messages("", [])), self.lm)
        costs = [_length(self._encode(self.build_messages("", [c])), self.lm) - empty + wide for c in cands]
        order = sorted(range(m), key=lambda j: (-costs[j], -self._pixels(cands[j])))
        pix = sorted((self._pixels(c) for c in cands), reverse=True)
        w, tok, px = 0, base, 0
        for k in range(limit):
            tok += costs[order[k]]
            px += pix[k]
            if not self._fits(tok, px):
                break
            w = k + 1
        if w < 2:
            st.notes.append(f"{self.name}: the budget fits fewer than 2 candidates, kept input order")
            return
        step = self.step or max(1, w // 2)
        st.windows = sliding_windows(m, w, min(step, w))
        if w < limit:
            st.notes.append(
                f"{self.name}: {m} candidates over the budget (max_length {self.lm.max_length}"
                + (f", max_total_pixels {self.max_total_pixels}" if self.max_total_pixels else "")
                + f"): {len(st.windows)} windows of {w}, step {min(step, w)}, bottom-up"
            )

    # ------------------------------------------------------------------ candidates
    def _payload(self, item: Item) -> Any:
        """The prepared image or the (cut) text shown for ``item``; raises on a failed image."""
        use_image = self.vision and self.candidate != "text" and item.image is not None
        if self.candidate == "image" and not use_image:
            raise MmrankError("no image" if self.vision else "a text backbone cannot show images")
        if use_image:
            assert isinstance(self.lm, VLM)
            return self.lm.prepare_image(item)
        text = self.lm.truncate_text(" ".join(item.full_text.split()), self.max_text_tokens)
        if not text:
            raise MmrankError("no text")
        return text

    def _prepare(self, q: Query, hits: list[Hit]) -> _Query:
        st = _Query(q, hits)
        failed: dict[str, int] = {}
        for i, h in enumerate(hits):
            assert h.item is not None
            try:
                st.payload[i] = self._payload(h.item)
                st.order.append(i)
                continue
            except ImageLoadError:
                why = "image failed to load"
            except MmrankError as e:
                why = str(e)
            except Exception as e:  # a lazy page renderer may raise anything: one candidate never stops the run
                why = f"image failed to load ({type(e).__name__})"
            st.hidden.append(i)
            failed[why] = failed.get(why, 0) + 1
        for why, c in sorted(failed.items()):
            st.notes.append(f"{self.name}: {c} candidate(s) not shown ({why}), placed last in input order")
        if not (q.text and q.text.strip()):
            st.notes.append(f"{self.name}: query {q.id!r} has no text, kept input order")
            return st
        self._plan(st, q.text)
        return st

    # ------------------------------------------------------------------ engine
    def _seed(self, q: Query, a: int, b: int) -> int:
        return zlib.crc32(f"{self.seed}|{q.id}|{a}-{b}".encode())

    def _generate(self, prompts: list[Any], seeds: list[int]) -> list[str]:
        if not prompts:
            return []
        n, t, p = self.max_new_tokens, self.temperature, self.top_p
        if isinstance(self.lm, VLM):
            return self.lm.generate(prompts, max_new_tokens=n, temperature=t, top_p=p, top_k=self.top_k, seed=seeds)
        # CausalLM.generate seeds torch's global generator: keep the caller's random state intact
        devices = [self.lm.device] if self.lm.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return self.lm.generate(prompts, max_new_tokens=n, temperature=t, top_p=p, seed=seeds[0])

    def _round(self, active: list[tuple[_Query, tuple[int, int]]]) -> None:
        ready: list[tuple[_Query, tuple[int, int], list[int]]] = []
        prompts: list[Any] = []
        for st, (a, b) in active:
            ids = st.order[a:b]
            enc = st.ready.pop((a, b), None)
            if enc is None:
                enc = self._encode(self.build_messages(st.query.text or "", [st.payload[i] for i in ids]))
            if _length(enc, self.lm) + self.max_new_tokens > self.lm.max_length:
                st.notes.append(f"{self.name} window {a}-{b}: prompt over max_length, kept window order")
                continue
            ready.append((st, (a, b), ids))
            prompts.append(enc)
        outs = self._generate(prompts, [self._seed(st.query, a, b) for st, (a, b), _ids in ready])
        for (st, (a, b), ids), out in zip(ready, outs, strict=True):
            parsed = parse_mm_r5(out, len(ids))
            st.order[a:b] = [ids[j] for j in parsed.order]
            st.calls += 1
            st.notes += [f"{self.name} window {a}-{b}: {n}" for n in parsed.notes()]
            st.log.append(
                {
                    "window": [a, b],
                    "candidates": [st.hits[i].id for i in ids],
                    "reasoning": parsed.reasoning,
                    "answer": parsed.answer,
                }
            )

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        out: list[Outcome] = []
        group = max(1, self.batch_size)
        for g in range(0, len(jobs), group):  # one group's images in memory at a time
            states = [self._prepare(q, hits) for q, hits in jobs[g : g + group]]
            r = 0
            while any(r < len(st.windows) for st in states):
                self._round([(st, st.windows[r]) for st in states if r < len(st.windows)])
                r += 1
            for st in states:
                meta = {"windows": st.log} if st.log else {}
                out.append(Outcome(st.order + st.hidden, None, st.calls, st.notes, meta))
                st.payload.clear()
                st.ready.clear()
        return out
