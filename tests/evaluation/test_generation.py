"""Batched greedy generation gives what one-by-one generation gives (padding-aware)."""

import pytest

from tests.evaluation.teaching import TAUGHT
from worker.evaluation.batching import pad_batch
from worker.evaluation.generation import (
    MAX_NEW_TOKENS_MARGIN,
    default_max_new_tokens,
    fit_context,
    generate_texts,
)

# Different lengths, so batches are padded.
PROMPTS = ["hi", "a much longer prompt than the others", "mid length", "x", "another one of medium size"]


@pytest.mark.parametrize("fixture", ["tiny_causal", "tiny_t5"])
def test_batched_generation_matches_one_by_one(fixture, request):
    model, tokenizer = request.getfixturevalue(fixture)
    alone = [generate_texts(model, tokenizer, [p], max_new_tokens=10)[0] for p in PROMPTS]
    # Batches are formed by prompt length, so a batch size of 2 also checks the order comes back.
    for batch_size in (2, 5):
        batched = generate_texts(model, tokenizer, PROMPTS, max_new_tokens=10, batch_size=batch_size)
        assert batched == alone
    # A model that answered nothing would make the comparison vacuous.
    assert sum(bool(text) for text in batched) >= 3


def test_generation_stops_at_eos_and_continues_the_prompt_only(taught_causal):
    model, tokenizer = taught_causal
    prompts = list(TAUGHT)[:4]
    assert generate_texts(model, tokenizer, prompts, max_new_tokens=40, batch_size=3) == [TAUGHT[p] for p in prompts]


def test_left_padding_puts_prompts_at_the_end():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_default_max_new_tokens_leaves_a_margin_over_the_longest_reference(tiny_causal):
    _, tokenizer = tiny_causal  # one token per byte
    assert default_max_new_tokens(tokenizer, ["abc", "abcdefg"]) == 7 + MAX_NEW_TOKENS_MARGIN


def test_a_prompt_longer_than_the_context_keeps_its_end(tiny_causal, tiny_t5):
    model, tokenizer = tiny_causal
    context = model.config.max_position_embeddings
    long_prompt = "x" * context + "the end"
    assert fit_context(model, list(range(context + 5)), 10) == list(range(15, context + 5))
    tail = tokenizer.decode(fit_context(model, tokenizer(long_prompt, add_special_tokens=False)["input_ids"], 10))
    assert generate_texts(model, tokenizer, [long_prompt], max_new_tokens=10) == generate_texts(
        model, tokenizer, [tail], max_new_tokens=10)
    assert fit_context(tiny_t5[0], list(range(2000)), 10) == list(range(2000))
