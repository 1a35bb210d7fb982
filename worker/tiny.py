"""Tiny models and a byte-level tokenizer built in code, for the demo, tests and benchmarks.

Nothing is downloaded: the tokenizer maps every byte to its own id (plus <pad>, <eos>, <bos>),
and the models are randomly initialised from a seed, so the same call always builds the same model.

    python -m worker.tiny PATH [--kind causal|t5]   # writes a tiny base model directory
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

PAD, EOS, BOS = "<pad>", "<eos>", "<bos>"
# Role markers are plain bytes, so the template needs no extra vocabulary.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: i for i, symbol in enumerate(sorted(byte_alphabet))}
    for special in (PAD, EOS, BOS):
        vocab[special] = len(vocab)
    # BPE without merges over the byte-level alphabet is exactly "one token per byte".
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, bos_token=BOS, padding_side="right"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _seeded_init(seed: int, build):
    # fork_rng keeps the caller's global RNG untouched while the weights are drawn.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _save(model, tokenizer, path: str | Path | None) -> None:
    if path is not None:
        model.save_pretrained(str(path), safe_serialization=True)
        tokenizer.save_pretrained(str(path))


def build_tiny_causal_lm(
    path: str | Path | None = None, *, hidden=64, layers=2, heads=4, intermediate=128, seed=0
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = _seeded_init(seed, lambda: LlamaForCausalLM(config)).eval()
    _save(model, tokenizer, path)
    return model, tokenizer


def build_tiny_t5(
    path: str | Path | None = None, *, d_model=64, layers=2, seed=0
) -> tuple[T5ForConditionalGeneration, PreTrainedTokenizerFast]:
    tokenizer = build_tiny_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=d_model // 4,
        d_ff=2 * d_model,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = _seeded_init(seed, lambda: T5ForConditionalGeneration(config)).eval()
    _save(model, tokenizer, path)
    return model, tokenizer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny base model directory (safetensors).")
    parser.add_argument("path")
    parser.add_argument("--kind", choices=["causal", "t5"], default="causal")
    args = parser.parse_args(argv)
    builder = build_tiny_causal_lm if args.kind == "causal" else build_tiny_t5
    builder(args.path)
    print(Path(args.path).resolve())


if __name__ == "__main__":
    main()
