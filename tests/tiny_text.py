"""Tiny text models built from config (random weights) for the LLM backend and text reranker tests.

Every builder trains or configures a model in milliseconds, saves it with ``save_pretrained`` into a
directory, and returns that directory, so the tests go through the real ``from_pretrained`` code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# The Qwen2.5 chat template, reduced to the parts the rerankers use (system default, roles, generation prompt).
QWEN_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CORPUS = [
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
    'Note that the answer can only be "yes" or "no". yes no true false Relevant relevant',
    "query: document: Relevance: 0 1 2 3 4 5 6 7 8 9 10 [1] [2] [3] > <think> </think> <answer> </answer>",
    "Here are some paragraphs: Please find information that are relevant to the following query.",
    "Passage: Please write a question based on this passage. Query: N/A",
    "The cat sat on the mat. Dogs bark at night. Paris is the capital of France.",
    "What is the capital of France? How do dogs communicate? Machine learning ranks documents.",
    "Given a web search query and some relevant documents, rerank the documents that answer the query",
    "Documents: Search Query: Instruct: Given a query, retrieval relevant passage.",
    "You are a search relevance expert who evaluates how well documents match search queries.",
    "0123456789 {} [] () , . : ; ! ? \" ' - _ / \\ \n\n \t",
]


def qwen_tokenizer():
    """A byte-level BPE tokenizer with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL[1:],
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def save_tiny_qwen(path: Path, *, seed: int = 0, layers: int = 2, hidden: int = 32, tokenizer: Any = None) -> Path:
    """Tiny Qwen2 causal LM + tokenizer saved under ``path`` (``tokenizer`` overrides the tiny BPE one)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = tokenizer if tokenizer is not None else qwen_tokenizer()
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def bert_tokenizer():
    from transformers import BertTokenizerFast

    words = sorted({w.strip(".,?!\"'").lower() for line in CORPUS for w in line.split()} - {""})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = list(dict.fromkeys(vocab))
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})


def save_tiny_cross_encoder(
    path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4, tokenizer: Any = None
) -> Path:
    """Tiny BERT sequence classifier (one logit) + tokenizer saved under ``path`` (``tokenizer`` overrides)."""
    from transformers import BertConfig, BertForSequenceClassification

    tok = tokenizer if tokenizer is not None else bert_tokenizer()
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=4 * hidden if tokenizer is not None else 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=512,
        num_labels=1,
    )
    model = BertForSequenceClassification(cfg).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def t5_tokenizer():
    """A sentencepiece-like Unigram tokenizer (Metaspace ``▁`` word starts) with whole-word pieces, like T5's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for line in CORPUS for w in line.split()} | {"true", "false", "Relevant:"})
    chars = sorted({c for line in CORPUS for c in line if not c.isspace()})
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -8.0)]
    vocab += [("\u2581" + w, -5.0) for w in words]
    vocab += [(c, -10.0) for c in chars] + [("\u2581" + c, -10.0) for c in chars]
    vocab = list({p: (p, sc) for p, sc in vocab}.values())
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def save_tiny_t5(path: Path, *, seed: int = 0) -> Path:
    """Tiny T5 encoder-decoder + tokenizer saved under ``path``."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = t5_tokenizer()
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    model = T5ForConditionalGeneration(cfg).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

# Llama-3.1's chat template reduced to roles and the generation prompt (no date header).
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


# Llama-3's pre-tokenisation pattern (tiktoken style: newline runs with their leading spaces are one piece)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def llama3_tokenizer():
    """A byte-level BPE tokenizer with Llama-3's special tokens and pre-tokenisation pattern; like Llama-3's, it
    prepends ``<|begin_of_text|>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=LLAMA3_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B", special_tokens=[("<|begin_of_text|>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        additional_special_tokens=LLAMA3_SPECIAL[2:4],
        chat_template=LLAMA3_CHAT_TEMPLATE,
    )


def save_tiny_llama(path: Path, *, seed: int = 0, layers: int = 2, hidden: int = 32, tokenizer: Any = None) -> Path:
    """Tiny Llama causal LM with a Llama-3-style tokenizer saved under ``path`` (name it ``...llama-3...`` for code
    that recognises the family by name, as the official ICR code does)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer if tokenizer is not None else llama3_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
