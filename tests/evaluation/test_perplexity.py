"""Perplexity agrees with the model's own loss, whatever the batching."""

import math

import pytest
import torch

from worker.evaluation import perplexity

TEXTS = ["The sun rises in the east.", "Bees make honey.", "A much longer sentence about the quiet river valley."]


def _reference_perplexity(model, tokenizer, texts):
    """Token-weighted exp(mean NLL) from the model's built-in loss, one text at a time."""
    start = tokenizer.bos_token_id
    total_nll = total_tokens = 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            if model.config.is_encoder_decoder:
                loss = model(input_ids=torch.tensor([[start]]), labels=torch.tensor([ids])).loss
            else:
                loss = model(input_ids=torch.tensor([[start, *ids]]), labels=torch.tensor([[start, *ids]])).loss
        total_nll += loss.item() * len(ids)
        total_tokens += len(ids)
    return math.exp(total_nll / total_tokens)


@pytest.mark.parametrize("fixture", ["tiny_causal", "tiny_t5"])
def test_perplexity_matches_the_models_own_loss(fixture, request):
    model, tokenizer = request.getfixturevalue(fixture)
    expected = _reference_perplexity(model, tokenizer, TEXTS)
    assert perplexity(model, tokenizer, TEXTS, batch_size=2) == pytest.approx(expected, rel=1e-4)
    assert perplexity(model, tokenizer, TEXTS, batch_size=1) == pytest.approx(expected, rel=1e-4)


def test_taught_text_is_less_perplexing(taught_causal, tiny_causal):
    taught = ["Q: How do I bake bread?\nA: Mix flour, water and yeast."]
    assert perplexity(*taught_causal, taught) < perplexity(*tiny_causal, taught) / 2


def test_empty_texts_are_rejected(tiny_causal):
    with pytest.raises(ValueError, match="non-empty"):
        perplexity(*tiny_causal, ["", ""])
