"""Tiny, randomly initialised models and tokenizers built locally, for tests and smoke runs.

Nothing here downloads: the tokenizer is trained on a small built-in corpus in
milliseconds and the models are built from a config.
"""

from __future__ import annotations

import functools
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Solve the problem step by step. Write one step per line.",
    "End with the final answer in the form \\boxed{ANSWER}.",
    "Tom has 12 apples. He buys 3 bags with 7 apples each. How many apples now?",
    "3 * 7 = 21",
    "12 + 21 = 33",
    "33 - 5 = 28 and 28 / 4 = 7",
    "The answer is \\boxed{28}.",
    "#### 42",
    "0123456789 + - * / = ( ) . , $ % x",
    "Is this step correct? Yes No",
]


@functools.lru_cache(maxsize=4)
def tiny_tokenizer(vocab_size: int = 320, chat_template: bool = True) -> Any:
    """Return a byte-level BPE ``PreTrainedTokenizerFast`` trained on a small corpus.

    Args:
        vocab_size: Target vocabulary size, including the 256 byte symbols.
        chat_template: Whether to attach a ChatML chat template.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>" if chat_template else "<|endoftext|>",
        bos_token="<|endoftext|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
    )
    if chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_causal_lm(
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 2048,
    seed: int = 0,
) -> Any:
    """Return a randomly initialised Llama-architecture causal LM (about 0.1M parameters).

    The weights depend only on ``seed``; the global torch RNG is restored afterwards.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model
