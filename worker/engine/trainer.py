"""The training loop around a strategy: data, seeding, accumulation, schedule, callbacks, NaN guard.

``train_task`` trains in this process, or with ``config.devices`` processes (``distributed``); each of
those runs the same ``train_encoded`` as one rank of a ``World``. (A script that trains on several devices
needs the usual ``if __name__ == "__main__":`` guard, as the processes import its main module.)
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace

import torch

from worker.prompt_completion import base_question

from .config import (
    NonFiniteLoss,
    OnPhase,
    OnProgress,
    ProgressInfo,
    ShouldCancel,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
)
from .data import Example, collate, count_tokens, encode, example_batches
from .distributed import launch
from .loading import model_kind
from .strategies import Context
from .strategies import get as get_strategy
from .world import World, loss_tokens


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


def reference_records(texts, tokenizer) -> list[dict]:
    """General texts as the model meets them outside any task, so the kept directions include those where an
    answer starts, which a task's answer format otherwise takes over. For a chat model each text is a
    user's turn rendered with its chat template up to the assistant's answer (measured on SmolLM2-135M-
    Instruct's first task: bench/RESULTS.md). For a base model each text is kept as plain text and also in
    the question form it is asked in (``base_question``): task prompts for a base end where an answer
    starts too, and with plain text alone Gemma 3's general answers wore away (bench/RESULTS.md)."""
    if getattr(tokenizer, "chat_template", None):
        return [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": ""}]} for t in texts]
    return [record for t in texts
            for record in ({"prompt": "", "completion": t}, {"prompt": base_question(t), "completion": ""})]


@dataclass
class TaskData:
    """A task's records as token ids: what every rank needs besides the model and the config."""

    examples: list[Example]
    prior: list[Example]  # earlier tasks' examples, for strategies whose spec needs_prior_tasks
    reference: list[Example]  # general text (``reference_records``), likewise
    pad_id: int
    kind: str
    valid: list[Example] = field(default_factory=list)  # validation records, for the loss at each epoch's end


def train_task(
    model,
    tokenizer,
    records: list[dict],
    config: TrainConfig,
    *,
    tasks_learned: int = 0,
    prior_records=(),
    valid_records=(),
    reference_texts=(),
    on_phase: OnPhase | None = None,
    on_progress: OnProgress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> TrainResult:
    config.validate()
    if not records:
        raise ValueError("no training records")
    on_phase = on_phase or (lambda _name: None)
    started = time.monotonic()
    on_phase("calibrating")
    kind = model_kind(model.config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    needs_prior = get_strategy(config.strategy).spec.needs_prior_tasks
    prior = encode(list(prior_records), tokenizer, kind, config.max_length) if needs_prior and prior_records else []
    reference = (
        encode(reference_records(reference_texts, tokenizer), tokenizer, kind, config.max_length)
        if needs_prior and reference_texts
        else []
    )
    valid = encode(list(valid_records), tokenizer, kind, config.max_length) if valid_records else []
    data = TaskData(encode(records, tokenizer, kind, config.max_length), prior, reference, pad_id, kind, valid)
    run = launch if config.devices > 1 else _in_this_process
    result = run(
        train_encoded,
        model,
        data,
        config,
        tasks_learned=tasks_learned,
        on_phase=on_phase,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    return replace(result, seconds=time.monotonic() - started)


def _in_this_process(train, model, data, config, **kwargs) -> TrainResult:
    return train(model, data, config, world=World(device=resolve_device(config.device)), **kwargs)


def train_encoded(
    model,
    data: TaskData,
    config: TrainConfig,
    *,
    world: World,
    tasks_learned: int,
    on_phase: OnPhase,
    on_progress: OnProgress | None,
    should_cancel: ShouldCancel | None,
) -> TrainResult:
    """Prepare the strategy and train, as ``world``'s rank; the result's model is this rank's copy."""
    seed_everything(config.seed)
    device = world.device
    model.to(device)
    shuffler = torch.Generator().manual_seed(config.seed)
    context = Context(data.examples, data.prior, data.reference, data.pad_id, device, shuffler, tasks_learned,
                      on_phase)
    prepared = get_strategy(config.strategy).prepare(model, config, context)
    prepared = world.distribute(prepared)

    on_phase("training")
    steps, trained_tokens, final_loss = _run_loop(
        prepared, data, config, world, shuffler, on_progress, should_cancel
    )
    trained = prepared.finish(world.unwrap(prepared.model)).eval()
    trained.requires_grad_(False)
    return TrainResult(trained, prepared.retention, steps, trained_tokens, final_loss, 0.0)


def _run_loop(prepared, data, config, world, shuffler, on_progress, should_cancel):
    model, optimizer, device = prepared.model, prepared.optimizer, world.device
    micro_per_epoch = math.ceil(len(data.examples) / config.batch_size)
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
        micro_batches = list(example_batches(data.examples, config.batch_size, shuffler))
        for start in range(0, len(micro_batches), config.grad_accum):
            group = micro_batches[start : start + config.grad_accum]
            step_loss, step_tokens = 0.0, 0
            for index, examples in enumerate(group):
                # share: this rank's part of the micro-batch's loss (1.0 in one process); the gradient
                # reduction averages over the ranks, hence the factor world.size.
                share, mine = world.part(examples, data.kind)
                batch = {k: v.to(device) for k, v in collate(mine, data.pad_id).items()}
                with world.syncing(model, last=index == len(group) - 1):
                    with autocast:
                        loss = model(**batch).loss
                    if share and not torch.isfinite(loss):
                        raise NonFiniteLoss(
                            f"loss became {loss.item()} at step {step + 1} of {total_steps} "
                            f"(learning rate {schedule.get_last_lr()[0]:.3g}); try a lower learning_rate, "
                            "fewer warmup-free steps, or check the data for empty or garbled records"
                        )
                    (loss * (share * world.size) / len(group)).backward()
                step_loss += loss.item() * share / len(group)
                if share:
                    step_tokens += count_tokens(batch, data.kind)
            step_loss, step_tokens = world.total(step_loss, step_tokens)
            step_tokens = int(step_tokens)
            trained_tokens += step_tokens
            window_tokens += step_tokens
            lr = schedule.get_last_lr()[0]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            step += 1
            epoch_end = start + config.grad_accum >= len(micro_batches)
            valid_loss = _validation_loss(model, data, config, world, autocast) if epoch_end and data.valid else None
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
                        valid_loss=valid_loss,
                    )
                )
                window_started, window_tokens = time.monotonic(), 0
            if world.should_stop(should_cancel):
                raise TrainingCancelled(f"cancelled at step {step} of {total_steps}")
    model.eval()
    return step, trained_tokens, step_loss


@torch.no_grad()
def _validation_loss(model, data: TaskData, config: TrainConfig, world: World, autocast) -> float | None:
    """The mean loss per completion token over the validation examples (every rank runs its share)."""
    model.eval()
    loss_sum, tokens = 0.0, 0.0
    for examples in example_batches(data.valid, config.batch_size):
        share, mine = world.part(examples, data.kind)
        batch = {k: v.to(world.device) for k, v in collate(mine, data.pad_id).items()}
        weight = sum(loss_tokens(e, data.kind) for e in mine) if share else 0
        with autocast:
            loss = model(**batch).loss
        if weight:  # a stand-in example (see World.part) only keeps the ranks in step
            loss_sum += loss.item() * weight
            tokens += weight
    loss_sum, tokens = world.total(loss_sum, tokens)
    model.train()
    return loss_sum / tokens if tokens else None
