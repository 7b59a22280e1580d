"""Training yes/no LLM rerankers with the SFT or the contrastive objective (arXiv 2510.14824).

* :mod:`mmrank.train.data` -- training examples (query, positives, negatives) from JSONL or HF ``datasets``,
  validated, and hard-negative mining with any retriever of the library.
* :mod:`mmrank.train.objectives` -- the two losses on last-position logits.
* :mod:`mmrank.train.trainer` -- LoRA training of a text LLM or a VLM, checkpoints and resume.
"""

from mmrank.train.data import TrainExample, load_examples, mine_negatives, parse_examples
from mmrank.train.objectives import contrastive_loss, sft_loss
from mmrank.train.trainer import TrainConfig, train

__all__ = [
    "TrainConfig",
    "TrainExample",
    "contrastive_loss",
    "load_examples",
    "mine_negatives",
    "parse_examples",
    "sft_loss",
    "train",
]
