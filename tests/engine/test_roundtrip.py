"""Every strategy returns a plain model: save, reload with from_pretrained alone, same logits."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from worker.engine import TrainConfig, load_model_and_tokenizer, train_task
from worker.tiny import build_tiny_causal_lm, build_tiny_t5

from .conftest import fact_records

KINDS = {
    "causal": (build_tiny_causal_lm, AutoModelForCausalLM),
    "t5": (build_tiny_t5, AutoModelForSeq2SeqLM),
}


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("strategy", ["adaptive_svd", "full", "lora"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_trained_model_round_trips_through_plain_from_pretrained(tmp_path, kind, strategy):
    builder, auto = KINDS[kind]
    model, tokenizer = builder()
    records = fact_records("t", 16, seed=0)
    config = TrainConfig(strategy=strategy, n_epochs=1, learning_rate=3e-3)
    result = train_task(model, tokenizer, records, config, prior_records=fact_records("g", 8, seed=1))
    result.model.cpu()  # trained where there is a GPU; compared with the reloaded copy on the CPU
    result.model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]
    assert not list(tmp_path.glob("adapter_*"))
    batch = {"input_ids": tokenizer(["t abcd=xyz", "t qrst=uvw"], return_tensors="pt")["input_ids"]}
    if kind == "t5":
        batch["decoder_input_ids"] = batch["input_ids"][:, :4]
    reloaded = auto.from_pretrained(tmp_path).eval()
    assert torch.equal(_logits(result.model, batch), _logits(reloaded, batch))
    base_logits = _logits(builder()[0], batch)
    assert not torch.allclose(base_logits, _logits(reloaded, batch)), "training changed nothing"

    loaded, _, loaded_kind = load_model_and_tokenizer(tmp_path)
    assert loaded_kind == ("seq2seq" if kind == "t5" else "causal")
    assert torch.equal(_logits(loaded, batch), _logits(reloaded, batch))
