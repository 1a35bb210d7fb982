"""The training loop around a strategy: data, seeding, accumulation, schedule, callbacks, NaN guard."""

from __future__ import annotations

import math
import random
import time

import torch

from .config import NonFiniteLoss, ProgressInfo, TrainConfig, TrainingCancelled, TrainResult
from .data import batches, collate, count_tokens, encode
from .loading import model_kind
from .strategies import prepare_adaptive_svd, prepare_full, prepare_lora

PRIOR_SAMPLES_PER_CALIBRATION_BATCH = 4  # prior examples per new-task calibration example


def resolve_device(requested: str | None) -> torch.device:
    return torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Linear warmup to the peak rate, then cosine decay to zero at the last step."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _single_inputs(examples, count: int, pad_id: int, device, generator) -> list[dict]:
    """``count`` seeded examples, each its own unpadded batch, for calibration."""
    order = torch.randperm(len(examples), generator=generator)[:count].tolist()
    return [{k: v.to(device) for k, v in collate([examples[i]], pad_id).items()} for i in order]


def train_task(
    model,
    tokenizer,
    records: list[dict],
    config: TrainConfig,
    *,
    tasks_learned: int = 0,
    prior_records=(),
    on_phase=None,
    on_progress=None,
    should_cancel=None,
) -> TrainResult:
    config.validate()
    if not records:
        raise ValueError("no training records")
    on_phase = on_phase or (lambda _name: None)
    started = time.monotonic()
    seed_everything(config.seed)
    device = resolve_device(config.device)
    kind = model_kind(model.config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.to(device)

    on_phase("calibrating")
    examples = encode(records, tokenizer, kind, config.max_length)
    shuffler = torch.Generator().manual_seed(config.seed)
    if config.strategy == "adaptive_svd":
        calibration_count = config.retention.calibration_batches * config.batch_size
        calibration = _single_inputs(examples, calibration_count, pad_id, device, shuffler)
        prior = []
        if prior_records:
            prior_examples = encode(list(prior_records), tokenizer, kind, config.max_length)
            count = calibration_count * PRIOR_SAMPLES_PER_CALIBRATION_BATCH
            prior = _single_inputs(prior_examples, count, pad_id, device, shuffler)
        prepared = prepare_adaptive_svd(
            model,
            config,
            calibration_inputs=calibration,
            prior_inputs=prior,
            tasks_learned=tasks_learned,
            on_phase=on_phase,
        )
    elif config.strategy == "lora":
        prepared = prepare_lora(model, config)
    else:
        prepared = prepare_full(model, config)

    on_phase("training")
    steps, trained_tokens, final_loss = _run_loop(
        prepared, examples, config, kind, pad_id, device, shuffler, on_progress, should_cancel
    )
    trained = prepared.finish(prepared.model).eval()
    trained.requires_grad_(False)
    return TrainResult(
        trained, prepared.retention, steps, trained_tokens, final_loss, time.monotonic() - started
    )


def _run_loop(prepared, examples, config, kind, pad_id, device, shuffler, on_progress, should_cancel):
    model, optimizer = prepared.model, prepared.optimizer
    micro_per_epoch = math.ceil(len(examples) / config.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.n_epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(config.warmup_ratio * total_steps), total_steps)
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    step, trained_tokens, step_loss = 0, 0, float("nan")
    window_started, window_tokens = time.monotonic(), 0
    for epoch in range(config.n_epochs):
        micro_batches = list(batches(examples, config.batch_size, pad_id, shuffler))
        for start in range(0, len(micro_batches), config.grad_accum):
            group = micro_batches[start : start + config.grad_accum]
            step_loss = 0.0
            for batch in group:
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast:
                    loss = model(**batch).loss
                if not torch.isfinite(loss):
                    raise NonFiniteLoss(
                        f"loss became {loss.item()} at step {step + 1} of {total_steps} "
                        f"(learning rate {schedule.get_last_lr()[0]:.3g}); try a lower learning_rate, "
                        "fewer warmup-free steps, or check the data for empty or garbled records"
                    )
                (loss / len(group)).backward()
                step_loss += loss.item() / len(group)
                tokens = count_tokens(batch, kind)
                trained_tokens += tokens
                window_tokens += tokens
            lr = schedule.get_last_lr()[0]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            step += 1
            if on_progress is not None:
                elapsed = max(time.monotonic() - window_started, 1e-9)
                on_progress(
                    ProgressInfo(
                        step=step,
                        total_steps=total_steps,
                        loss=step_loss,
                        lr=lr,
                        tokens_per_second=window_tokens / elapsed,
                        epoch=epoch + (start + len(group)) / len(micro_batches),
                    )
                )
                window_started, window_tokens = time.monotonic(), 0
            if should_cancel is not None and should_cancel():
                raise TrainingCancelled(f"cancelled at step {step} of {total_steps}")
    model.eval()
    return step, trained_tokens, step_loss
