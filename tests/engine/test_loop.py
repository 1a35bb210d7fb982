"""What the worker relies on from the loop: determinism, callbacks, cancel, NaN guard, safe loading."""

import pytest
import torch

from worker.engine import NonFiniteLoss, TrainConfig, TrainingCancelled, load_model_and_tokenizer, train_task
from worker.tiny import build_tiny_causal_lm

from .conftest import fact_records

RECORDS = fact_records("t", 24, seed=0)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("strategy", ["adaptive_svd", "full"])
def test_same_seed_gives_identical_weights(strategy):
    config = TrainConfig(strategy=strategy, n_epochs=1, learning_rate=3e-3, seed=7)
    first = train_task(*build_tiny_causal_lm(), RECORDS, config).model
    second = train_task(*build_tiny_causal_lm(), RECORDS, config).model
    assert torch.equal(_weights(first), _weights(second))
    other = train_task(
        *build_tiny_causal_lm(), RECORDS, TrainConfig(strategy=strategy, n_epochs=1, seed=8)
    ).model
    assert not torch.equal(_weights(first), _weights(other))


def test_progress_phases_accumulation_and_warmup():
    phases, progress = [], []
    config = TrainConfig(n_epochs=2, batch_size=4, grad_accum=2, warmup_ratio=0.5, learning_rate=1e-3)
    result = train_task(
        *build_tiny_causal_lm(), RECORDS, config, on_phase=phases.append, on_progress=progress.append
    )
    assert phases == ["calibrating", "decomposing", "training"]
    # 24 records / batch 4 = 6 micro-batches, 2 per step -> 3 steps an epoch, 6 in all.
    assert result.steps == 6 and [p.step for p in progress] == [1, 2, 3, 4, 5, 6]
    assert all(p.total_steps == 6 for p in progress)
    lrs = [p.lr for p in progress]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3) and lrs[-1] < lrs[2]
    assert progress[-1].epoch == pytest.approx(2.0)
    assert result.trained_tokens > 0 and result.final_loss == pytest.approx(progress[-1].loss)


def test_cancel_check_stops_training():
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(TrainingCancelled, match="step 2"):
        train_task(
            *build_tiny_causal_lm(), RECORDS, TrainConfig(strategy="full"), should_cancel=should_cancel
        )


def test_non_finite_loss_stops_with_a_clear_error():
    model, tokenizer = build_tiny_causal_lm()
    model.model.layers[0].mlp.register_forward_hook(lambda _m, _a, out: out * float("nan"))
    with pytest.raises(NonFiniteLoss, match=r"at step 1 .*learning_rate"):
        train_task(model, tokenizer, RECORDS, TrainConfig(strategy="full"))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="strategy"):
        train_task(*build_tiny_causal_lm(), RECORDS, TrainConfig(strategy="magic"))


def test_loader_refuses_pickles_and_reports_corrupt_dirs(tmp_path):
    build_tiny_causal_lm(tmp_path / "good")
    _, tokenizer, kind = load_model_and_tokenizer(tmp_path / "good")
    assert kind == "causal" and tokenizer.pad_token_id is not None

    (tmp_path / "good" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match="pickle"):
        load_model_and_tokenizer(tmp_path / "good")

    corrupt = tmp_path / "corrupt"
    build_tiny_causal_lm(corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model_and_tokenizer(corrupt)
    with pytest.raises(ValueError, match="cannot load model"):
        load_model_and_tokenizer(tmp_path / "missing")


def test_validation_loss_at_each_epoch_end_is_the_models_loss_on_the_validation_records():
    from worker.engine.data import collate, encode

    valid = fact_records("v", 10, seed=1)
    progress = []
    model, tokenizer = build_tiny_causal_lm()
    config = TrainConfig(strategy="full", n_epochs=2, batch_size=4, learning_rate=1e-3)
    result = train_task(model, tokenizer, RECORDS, config, valid_records=valid, on_progress=progress.append)
    # 24 records / batch 4 = 6 steps an epoch: the loss is measured after steps 6 and 12 only.
    assert [p.step for p in progress if p.valid_loss is not None] == [6, 12]
    examples = encode(valid, tokenizer, "causal", config.max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        expected = result.model(**collate(examples, pad)).loss.item()
    assert progress[-1].valid_loss == pytest.approx(expected, rel=1e-4)
    assert progress[5].valid_loss != pytest.approx(expected, rel=1e-4)  # measured on the weights of then
