"""Model backends for LLM-based rerankers: causal LM, vision-language model, sequence classification, seq2seq."""

from mmrank.llm.causal import CausalLM, get_causal_lm
from mmrank.llm.vlm import VLM, get_vlm

__all__ = ["VLM", "CausalLM", "get_causal_lm", "get_vlm"]
