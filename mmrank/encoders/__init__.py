"""Encoders: text (sentence-transformers / transformers), CLIP, CNN global features."""

from mmrank.encoders.base import Encoder, l2_normalise

__all__ = ["Encoder", "l2_normalise"]
