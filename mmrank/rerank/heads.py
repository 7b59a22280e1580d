"""Scoring heads of the yes/no LLM rerankers, shared by the text and the multimodal ones (and by training).

"Supervised Fine-Tuning or Contrastive Learning? Towards Better Multimodal LLM Reranking" (arXiv 2510.14824):
both heads read the LM head's logits at the last position (after the generation prompt); neither adds parameters.

* SFT (classification) head: ``s = softmax([z_no, z_yes])[yes] = exp(z_yes) / (exp(z_yes) + exp(z_no))``.
* Contrastive (CL) head: ``s = z_yes``, the raw "yes" logit.

The functions are pure and differentiable (they keep the input dtype and device), so a training loop computes the
same scores with gradients from :meth:`mmrank.llm.vlm.VLM.last_logits`.
:func:`judge_conversation` builds the paper's instruction prompt for any (query, candidate) with text and/or images.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from mmrank.prompts import PromptTemplate

Head = Literal["sft", "cl"]
HEADS: tuple[str, ...] = ("sft", "cl")


def check_head(head: str) -> Head:
    """``head`` when it names a known head, else ``ValueError``."""
    if head not in HEADS:
        raise ValueError(f"head must be 'sft' or 'cl', got {head!r}")
    return head  # type: ignore[return-value]


def sft_score(logits: torch.Tensor, yes_id: int, no_id: int) -> torch.Tensor:
    """``p(yes)`` from the softmax over the two label logits ``[z_no, z_yes]`` (last dim = vocabulary)."""
    two = torch.stack([logits[..., no_id], logits[..., yes_id]], dim=-1)
    return torch.softmax(two, dim=-1)[..., 1]


def cl_score(logits: torch.Tensor, yes_id: int) -> torch.Tensor:
    """The contrastive head's score: the ``yes`` logit itself."""
    return logits[..., yes_id]


def head_scores(logits: torch.Tensor, head: str, *, yes_id: int, no_id: int) -> torch.Tensor:
    """Scores of ``head`` (``"sft"`` or ``"cl"``) for logits ``(..., vocab)``."""
    if check_head(head) == "cl":
        return cl_score(logits, yes_id)
    return sft_score(logits, yes_id, no_id)


def judge_conversation(
    prompt: PromptTemplate,
    *,
    instruction: str | None = None,
    query_text: str | None = None,
    query_image: Any = None,
    doc_text: str | None = None,
    doc_image: Any = None,
) -> list[dict[str, Any]]:
    """The paper's judge prompt as chat messages with content parts (Qwen-VL format).

    System: the judge instruction. User parts: ``"<Instruct>: " + instruction``, ``"<Query>:"``, the query image,
    the query text, ``"\\n<Document>:"``, the document image, the document text -- absent parts are left out.
    """
    inst = instruction if instruction is not None else prompt.defaults["instruction"]
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt.render(instruction=inst)}]
    for prefix, image, text in (
        (prompt.render_extra("query_prefix"), query_image, query_text),
        (prompt.render_extra("document_prefix"), doc_image, doc_text),
    ):
        parts.append({"type": "text", "text": prefix})
        if image is not None:
            parts.append({"type": "image", "image": image})
        if text:
            parts.append({"type": "text", "text": text})
    msgs: list[dict[str, Any]] = []
    system = prompt.render_system()
    if system is not None:
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": parts})
    return msgs
