"""EBR -- Efficient Batch Reranking, SQUARE stage 2 (Wu, Lin & Yang, arXiv 2509.26330).

The top-K first-stage (SQAF) candidates of a composed query are tiled into one grid image with an index mark on
each cell (:mod:`mmrank.cir.grid`), and a VLM ranks them all in a single generation, seeing the reference image
(separately by default, or as a bordered grid cell) and the modification text. One model call per query instead of
K for pointwise scoring. The answer is parsed robustly (:mod:`mmrank.cir.parse`): duplicates and marks outside the
grid are dropped, omitted candidates are appended in SQAF order, and an answer without a ranking keeps the SQAF
order -- each recorded in ``Ranking.fallbacks``. Candidates beyond K keep their order below the reranked head.

Paper details that are not public ([gap]) are parameters with documented defaults: K = 9 (3x3 grid), the grid
layout and mark style (:class:`~mmrank.cir.grid.GridSpec`), the prompt (``mmrank/prompts/ebr.yaml``) and greedy
decoding with ``tokens_per_candidate * K + 16`` new tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmrank.cir.captioner import vlm_image
from mmrank.cir.grid import GridSpec, make_grid
from mmrank.cir.parse import parse_grid_ranking
from mmrank.errors import ImageLoadError
from mmrank.prompts import load_prompt
from mmrank.rerank.base import Outcome, QueriesLike, Reranker
from mmrank.types import Hit, Query, Run

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _where(position: str) -> str:
    return "center" if position == "center" else position.replace("-", " ") + " corner"


class EBRReranker(Reranker):
    """Single-pass grid reranking of the top ``k`` candidates of composed queries by a VLM."""

    name = "ebr"
    modalities = frozenset({"image", "composed"})

    def __init__(
        self,
        lm: Any = None,
        *,
        model: str | None = None,
        k: int | None = None,
        grid: GridSpec | None = None,
        reference: str = "separate",
        prompt: str = "ebr",
        prompt_path: str | Path | None = None,
        max_new_tokens: int | None = None,
        save_grids: str | Path | None = None,
        seed: int = 0,
        **vlm_kwargs: Any,
    ) -> None:
        super().__init__(seed=seed)
        if lm is None and model is None:
            raise ValueError("EBR needs a VLM: pass lm=VLM(...) or model='hub id or local path'")
        if lm is None or isinstance(lm, str):
            from mmrank.llm.vlm import get_vlm

            lm = get_vlm(str(lm or model), **vlm_kwargs)
        if reference not in ("separate", "cell"):
            raise ValueError(f"reference must be 'separate' or 'cell', got {reference!r}")
        self.lm = lm
        self.prompt = load_prompt(prompt, prompt_path)
        self.k = int(k or self.prompt.defaults.get("k", 9))
        if self.k < 2:
            raise ValueError(f"EBR needs k >= 2 candidates, got {self.k}")
        budget = getattr(lm, "max_pixels", None)
        self.grid = grid or (GridSpec(max_pixels=int(budget)) if budget else GridSpec())
        self.reference = reference
        self.max_new_tokens = max_new_tokens
        self.save_grids = Path(save_grids) if save_grids else None
        self._anchor = self.prompt.regex() if self.prompt.output_regex else None
        self.calls = 0
        self.answers: dict[str, str] = {}  # query id -> the VLM's raw answer, from the last rerank call

    def rerank(self, queries: QueriesLike, candidates: Run, top_k: int | None = None) -> Run:
        """Rerank the top ``top_k`` (default: this reranker's ``k``) candidates of every query."""
        return super().rerank(queries, candidates, top_k if top_k is not None else self.k)

    def conversation(self, q: Query, grid: Any, n: int, reference: Any) -> list[dict[str, Any]]:
        g = self.grid
        fields = dict(
            n=n,
            first=g.first_index,
            last=g.first_index + n - 1,
            where=_where(g.mark_position),
            instruction=(q.text or "").strip() or "(no change)",
        )
        content: list[dict[str, Any]] = []
        if self.reference == "separate":
            content.append({"type": "image", "image": reference})
            text = self.prompt.render(**fields)
        else:
            text = self.prompt.render_extra("user_cell", **fields)
        content += [{"type": "image", "image": grid}, {"type": "text", "text": text}]
        conv: list[dict[str, Any]] = []
        system = self.prompt.render_system(**fields)
        if system:
            conv.append({"role": "system", "content": system})
        conv.append({"role": "user", "content": content})
        return conv

    def build(self, q: Query, hits: Sequence[Hit]) -> tuple[list[dict[str, Any]], list[str]]:
        """The conversation for one query's head (grid drawn, optionally saved) and the fallbacks it needed."""
        fallbacks: list[str] = []
        ref = vlm_image(q)
        sources = [h.item.image if h.item is not None else None for h in hits]
        grid, unreadable = make_grid(
            [s if s is not None else b"" for s in sources],
            self.grid,
            reference=ref if self.reference == "cell" else None,
            save=self.save_grids / f"{_SAFE.sub('_', q.id)}.png" if self.save_grids else None,
        )
        if unreadable:
            ids = ", ".join(hits[i].id for i in unreadable[:5])
            fallbacks.append(f"ebr: {len(unreadable)} candidate image(s) unreadable, drawn blank: {ids}")
        return self.conversation(q, grid, len(hits), ref), fallbacks

    def _rerank_lists(self, jobs: Sequence[tuple[Query, list[Hit]]]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(jobs)
        todo: list[int] = []
        convs: list[list[dict[str, Any]]] = []
        notes: dict[int, list[str]] = {}
        for j, (q, hits) in enumerate(jobs):
            n = len(hits)
            if n < 2:
                outcomes[j] = Outcome(list(range(n)), fallbacks=[f"ebr: {n} candidate(s), nothing to rerank"])
                continue
            note = [f"ebr: k={self.k} exceeds the {n} candidates; reranked all {n}"] if n < self.k else []
            if q.image is None:
                outcomes[j] = Outcome(list(range(n)), fallbacks=["ebr: query has no reference image; kept order"])
                continue
            try:
                conv, fb = self.build(q, hits)
            except ImageLoadError as e:
                outcomes[j] = Outcome(list(range(n)), fallbacks=[f"ebr: reference image unreadable ({e}); kept order"])
                continue
            todo.append(j)
            convs.append(conv)
            notes[j] = note + fb
        if convs:
            per = int(self.prompt.defaults.get("tokens_per_candidate", 4))
            longest = max(len(jobs[j][1]) for j in todo)
            max_new = self.max_new_tokens or per * longest + 16
            answers = self.lm.generate(convs, max_new_tokens=max_new, temperature=0.0, seed=self.seed)
            self.calls += len(convs)
            self.answers = {jobs[j][0].id: ans for j, ans in zip(todo, answers, strict=True)}
            for j, ans in zip(todo, answers, strict=True):
                order, fb = parse_grid_ranking(
                    ans, len(jobs[j][1]), first_index=self.grid.first_index, anchor=self._anchor
                )
                outcomes[j] = Outcome(order, model_calls=1, fallbacks=notes[j] + fb)
        return [o for o in outcomes if o is not None]
