"""Model backends for LLM-based rerankers: causal LM, sequence classification, seq2seq."""

from mmrank.llm.causal import CausalLM, get_causal_lm

__all__ = ["CausalLM", "get_causal_lm"]
