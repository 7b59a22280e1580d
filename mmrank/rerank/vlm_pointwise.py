"""Pointwise yes/no reranking with a vision-language model: one forward pass per (query, candidate), no generation.

"Supervised Fine-Tuning or Contrastive Learning? Towards Better Multimodal LLM Reranking" (arXiv 2510.14824;
GMR / ``vec-ai/lychee-rerank-mm`` on Qwen2.5-VL). Query and candidate each bring text and/or an image (a photo, a
document page, a composed query's reference image); the prompt is the paper's judge instruction
(``mmrank/prompts/vlm_yes_no.yaml``, built by :func:`mmrank.rerank.heads.judge_conversation`) and the score is read
from the last position by the head shared with the text ``yes-no`` reranker (:mod:`mmrank.rerank.heads`):
``head="sft"`` gives ``p(yes)`` over the {no, yes} logits, ``head="cl"`` the raw ``yes`` logit.

Pairs are scored in length-sorted batches across all queries (:meth:`mmrank.llm.vlm.VLM.next_token_logits`), in
spans of ``batch_size * 16`` pairs so that only one span's images are held in memory; each image is decoded and
resized once per span. Pixel budget: the paper's 4·28² .. 1280·28² unless ``min_pixels`` / ``max_pixels`` say
otherwise. No prefix KV reuse (a query image makes every prompt's prefix multimodal).

Fallbacks (recorded per query, never a crash): a candidate image that fails to load -> scored on its text alone;
with no text either, or a pair over ``max_length`` -> ranked below every scored candidate of its query, in input
order. A query image that fails to load -> its text alone; with no text, the whole list keeps its input order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from mmrank.errors import ContextLengthError, ImageLoadError
from mmrank.fusion import Norm
from mmrank.llm.vlm import VLM, Encoded, get_vlm
from mmrank.prompts import PromptTemplate, load_prompt
from mmrank.rerank.base import Outcome, ScoringReranker
from mmrank.rerank.heads import check_head, head_scores, judge_conversation
from mmrank.types import Hit, Item, Query

_SPAN = 16  # pairs per span = batch_size * _SPAN


def _image_of(obj: Any, lm: VLM) -> tuple[Any, str | None]:
    """``(prepared image or None, note)`` of an item / query; a failure becomes a note, never an exception."""
    if getattr(obj, "image", None) is None:
        return None, None
    try:
        return lm.prepare_image(obj), None
    except Exception as e:  # decoding or a lazy page render: any failure is recorded, never raised
        kind = "query" if isinstance(obj, Query) else "candidate"
        return None, f"{kind} image failed to load ({type(e).__name__})"


class VLMYesNoReranker(ScoringReranker):
    """VLM yes/no judge over text and/or images (arXiv 2510.14824), SFT ``p(yes)`` or contrastive ``z_yes`` head.

    Args:
        model: hub id or local folder of a chat VLM (default ``vec-ai/lychee-rerank-mm``), or a LoRA adapter folder;
            or pass ``lm=`` a loaded :class:`~mmrank.llm.vlm.VLM`.
        head: ``"sft"`` (softmax over [z_no, z_yes] -> p(yes)) or ``"cl"`` (z_yes).
        instruction: the ``<Instruct>`` text (default: the web-search instruction of the paper's prompt).
        document: which parts of a candidate go into the prompt: ``"both"`` (its image and its text, when present),
            ``"image"`` or ``"text"``. Page items carry both a page image and a text layer.
        max_doc_tokens: candidate text cut to this many tokens (``None``: uncut).
        min_pixels, max_pixels: image budget (paper: 4·28², 1280·28²).
        adapter, merge_adapter: a PEFT LoRA adapter on top of ``model``.
    """

    name = "vlm-yes-no"
    prompt_name = "vlm_yes_no"
    default_model = "vec-ai/lychee-rerank-mm"
    modalities = frozenset({"text", "image", "image+text", "page"})

    def __init__(
        self,
        model: str | None = None,
        *,
        head: Literal["sft", "cl"] = "sft",
        instruction: str | None = None,
        document: Literal["both", "image", "text"] = "both",
        max_doc_tokens: int | None = 512,
        device: str | None = None,
        dtype: str = "auto",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_length: int = 32768,
        batch_size: int = 4,
        adapter: str | None = None,
        merge_adapter: bool = False,
        prompt: str | PromptTemplate | None = None,
        fusion: Norm | None = None,
        fusion_weight: float = 0.8,
        seed: int = 0,
        lm: VLM | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, fusion=fusion, fusion_weight=fusion_weight, seed=seed)
        self.head = check_head(head)
        if document not in ("both", "image", "text"):
            raise ValueError(f"document must be 'both', 'image' or 'text', got {document!r}")
        self.document = document
        self.prompt = prompt if isinstance(prompt, PromptTemplate) else load_prompt(prompt or self.prompt_name)
        d = self.prompt.defaults
        self.lm = lm or get_vlm(
            model or self.default_model,
            device=device,
            dtype=dtype,
            min_pixels=min_pixels if min_pixels is not None else d.get("min_pixels"),
            max_pixels=max_pixels if max_pixels is not None else d.get("max_pixels"),
            max_length=max_length,
            batch_size=batch_size,
            adapter=adapter,
            merge_adapter=merge_adapter,
        )
        self.instruction = instruction or d["instruction"]
        self.max_doc_tokens = max_doc_tokens
        self.yes_id = self.lm.token_id(d["positive"])
        self.no_id = self.lm.token_id(d["negative"])
        self._notes: list[str | None] = []

    # -- prompt --------------------------------------------------------------------------------------
    def doc_text(self, item: Item) -> str | None:
        """The candidate text put in the prompt (``None`` with ``document="image"`` or no text)."""
        if self.document == "image":
            return None
        return self.lm.truncate_text(" ".join(item.full_text.split()), self.max_doc_tokens) or None

    def conversation(self, query: Query, item: Item, *, query_image: Any = None, doc_image: Any = None) -> list:
        """The judge conversation of one pair (images as given: pass prepared PIL images, or ``None``)."""
        return judge_conversation(
            self.prompt,
            instruction=self.instruction,
            query_text=query.text or None,
            query_image=query_image,
            doc_text=self.doc_text(item),
            doc_image=doc_image if self.document != "text" else None,
        )

    # -- scoring ---------------------------------------------------------------------------------------
    def score_pairs(self, pairs: Sequence[tuple[Query, Item]]) -> tuple[np.ndarray, int]:
        scores = np.full(len(pairs), np.nan)
        self._notes = [None] * len(pairs)
        before = self.lm.calls
        span = max(1, self.batch_size * _SPAN)
        for start in range(0, len(pairs), span):
            idx, encs = self._encode_span(pairs, range(start, min(start + span, len(pairs))))
            if encs:
                z = self.lm.next_token_logits(encs)
                s = head_scores(z.double(), self.head, yes_id=self.yes_id, no_id=self.no_id)
                scores[idx] = s.numpy()
        return self._floor_failures(pairs, scores), self.lm.calls - before

    def _encode_span(self, pairs: Sequence[tuple[Query, Item]], span: range) -> tuple[list[int], list[Encoded]]:
        qimg: dict[str, tuple[Any, str | None]] = {}
        dimg: dict[str, tuple[Any, str | None]] = {}
        idx: list[int] = []
        encs: list[Encoded] = []
        for i in span:
            q, it = pairs[i]
            if q.id not in qimg:
                qimg[q.id] = _image_of(q, self.lm)
            if it.id not in dimg:
                dimg[it.id] = _image_of(it, self.lm) if self.document != "text" else (None, None)
            (qi, qnote), (di, dnote) = qimg[q.id], dimg[it.id]
            note = qnote or dnote
            if qi is None and not q.text:
                self._notes[i] = note or "query has no usable content"
                continue
            if di is None and self.doc_text(it) is None:
                self._notes[i] = (dnote or "candidate has no usable content") + ", ranked last"
                continue
            conv = self.conversation(q, it, query_image=qi, doc_image=di)
            try:
                enc = self.lm.encode(conv)
                if enc.length > self.lm.max_length:
                    raise ContextLengthError(f"{enc.length} tokens")
            except (ContextLengthError, ImageLoadError) as e:
                self._notes[i] = f"pair not scored ({type(e).__name__}), ranked last"
                continue
            if note:
                self._notes[i] = note + ", scored without it"
            idx.append(i)
            encs.append(enc)
        return idx, encs

    @staticmethod
    def _floor_failures(pairs: Sequence[tuple[Query, Item]], scores: np.ndarray) -> np.ndarray:
        """Unscored pairs (NaN) go below every scored candidate of their query, keeping their input order."""
        if not np.isnan(scores).any():
            return scores
        floor: dict[str, float] = {}
        for (q, _it), s in zip(pairs, scores, strict=True):
            if not np.isnan(s):
                floor[q.id] = min(floor.get(q.id, s), float(s))
        out = scores.copy()
        seen: Counter[str] = Counter()
        for i, (q, _it) in enumerate(pairs):
            if np.isnan(out[i]):
                seen[q.id] += 1
                out[i] = floor.get(q.id, 0.0) - 1.0 - 1e-6 * seen[q.id]
        return out

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        outcomes = super()._rerank_lists(jobs)
        at = 0
        for oc, (_q, hits) in zip(outcomes, jobs, strict=True):
            counts = Counter(n for n in self._notes[at : at + len(hits)] if n)
            at += len(hits)
            oc.fallbacks += [f"{self.name}: {n} ({c}/{len(hits)} docs)" for n, c in sorted(counts.items())]
        return outcomes
