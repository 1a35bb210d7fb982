"""Step-time and memory overhead of adaptive_svd against plain full fine-tuning and PEFT's OSF.

    python -m bench.step_overhead [--rounds 5] [--model small|qwen-0.5b] [--device cpu|cuda] [--seq 128]

Same model (``small``: Llama, 4 layers, hidden 384, intermediate 1024, vocab 2000; ``qwen-0.5b``: the
Qwen2-0.5B shape, 494 M parameters, random weights built in code), batch (8 x 128 tokens unless ``--seq``), seed and
learning rate for each strategy. On CUDA the forward runs under bf16 autocast with float32 weights, as
the trainer does, and memory is the CUDA allocator's peak. Step times are measured alternately in one process
(round-robin, so machine noise hits all alike) and reported as medians; peak memory is measured with
each strategy in its own process. Leak figures: the 64x64, 200-step AdamW(lr 1e-3, wd 0.01) protocol
of the tests, and the worst matrix of the benchmark model after its timed steps. Both wall-clock and
CPU seconds are reported: on a shared machine the CPU seconds of a 1-thread run are the steadier
figure. Last line is JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time

import peft
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from app.jobs.strategies import Retention
from bench.leak import leak, peft_osf_leak, projected_adamw_leak, projector_leak
from worker.engine import TrainConfig
from worker.engine.strategies.adaptive_svd.strategy import prepare_adaptive_svd
from worker.engine.strategies.adaptive_svd.subspace import weight_bases
from worker.engine.strategies.full import prepare_full
from worker.engine.targets import find_targets

STRATEGIES = ("full", "adaptive_svd", "peft_osf")
BATCH, SEQ, LR = 8, 128, 1e-3
PEFT_FROZEN_SHARE = 0.5  # PEFT OSF's own default
MODELS = {
    "small": (
        LlamaForCausalLM,
        LlamaConfig(
            vocab_size=2000,
            hidden_size=384,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=6,
            num_key_value_heads=6,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
        ),
    ),
    "qwen-0.5b": (
        Qwen2ForCausalLM,
        Qwen2Config(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
        ),
    ),
}


def build_model(name: str, device: torch.device):
    model_class, config = MODELS[name]
    torch.manual_seed(0)
    return model_class(config).to(device)


def random_tokens(model, rows: int, seed: int, seq: int = SEQ) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (rows, seq), generator=generator)
    return tokens.to(model.device)


def prepare(strategy: str, model, basis: str = Retention().basis):
    """Returns (trainable module, optimizer, projectors or None)."""
    config = TrainConfig(strategy="full", learning_rate=LR)
    if strategy == "full":
        prepared = prepare_full(model, config)
        return prepared.model, prepared.optimizer, None
    if strategy == "adaptive_svd":
        def single(seed):
            return [{"input_ids": row[None]} for row in random_tokens(model, 8, seed)]
        prepared = prepare_adaptive_svd(
            model,
            TrainConfig(learning_rate=LR, retention=Retention(basis=basis)),
            calibration_inputs=single(1),
            prior_inputs=single(2),
            tasks_learned=1,
            on_phase=lambda _name: None,
        )
        return prepared.model, prepared.optimizer, prepared.optimizer.projectors
    names = [t.name for t in find_targets(model)]
    wrapped = peft.get_peft_model(
        model, peft.OSFConfig(target_modules=names, effective_rank=PEFT_FROZEN_SHARE)
    )
    optimizer = torch.optim.AdamW(
        [p for p in wrapped.parameters() if p.requires_grad], lr=LR, weight_decay=0.01
    )
    return wrapped, optimizer, None


def timed_step(module, optimizer, batch) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one optimizer step; CUDA work is waited for inside the wall time."""
    cuda = batch.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(batch.device)
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=cuda):
        loss = module(input_ids=batch, labels=batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize(batch.device)
    return time.perf_counter() - wall, time.process_time() - cpu


def _status_mb(field: str) -> float:
    # /proc's VmHWM starts afresh at exec; ru_maxrss would carry the parent's peak into the child.
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def peak_memory(strategy: str, basis: str, model_name: str, device: torch.device, seq: int) -> dict:
    """Run in a child process. CPU: peak RSS, and its growth over the process right after imports.
    CUDA: the allocator's peak, and its growth over the model's own weights."""
    cuda = device.type == "cuda"
    baseline = 0.0 if cuda else _status_mb("VmRSS")
    model = build_model(model_name, device)
    if cuda:
        baseline = torch.cuda.memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
    module, optimizer, _ = prepare(strategy, model, basis)
    module.train()
    batch = random_tokens(model, BATCH, 0, seq)
    for _ in range(3):
        timed_step(module, optimizer, batch)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else _status_mb("VmHWM")
    return {"peak_mb": peak, "training_mb": peak - baseline}


def model_leaks(prepared: dict, originals: dict) -> dict:
    """Worst leak over the benchmark model's matrices after the timed steps, for both methods."""
    _, _, projectors = prepared["adaptive_svd"]
    ours = max(
        projector_leak(proj, param.detach() - originals[id(param)]) for param, proj in projectors.items()
    )
    wrapped = prepared["peft_osf"][0]
    merged = wrapped.merge_and_unload()
    theirs = 0.0
    for target in find_targets(merged):
        original = originals[target.name]
        rank = round(PEFT_FROZEN_SHARE * min(original.shape))
        u, v = weight_bases(original, rank)
        theirs = max(theirs, leak(target.weight.detach() - original, u, v))
    return {"adaptive_svd_model_leak": ours, "peft_osf_model_leak": theirs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds, 2 timed steps each")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--basis", default=Retention().basis, help="adaptive_svd retention basis")
    parser.add_argument("--model", choices=MODELS, default="small")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--seq", type=int, default=SEQ, help="tokens per sequence of the timed batch")
    parser.add_argument("--memory-of", choices=STRATEGIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # One thread: on a shared machine CPU seconds then measure the work itself, not spin-waiting.
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.memory_of:
        print(json.dumps(peak_memory(args.memory_of, args.basis, args.model, device, args.seq)))
        return

    base = build_model(args.model, device)
    prepared, originals = {}, {}
    for strategy in STRATEGIES:
        model = copy.deepcopy(base)
        if strategy == "peft_osf":
            originals.update({t.name: t.weight.detach().clone() for t in find_targets(model)})
        prepared[strategy] = prepare(strategy, model, args.basis)
        if strategy == "adaptive_svd":
            originals.update({id(p): p.detach().clone() for p in prepared[strategy][2]})
        prepared[strategy][0].train()
    batch = random_tokens(base, BATCH, 0, args.seq)
    for strategy in STRATEGIES:  # warm-up: first steps allocate optimizer state
        timed_step(*prepared[strategy][:2], batch)
    times = {s: [] for s in STRATEGIES}
    for round_index in range(args.rounds):
        for strategy in STRATEGIES:
            for _ in range(2):
                times[strategy].append(timed_step(*prepared[strategy][:2], batch))
        print(
            f"round {round_index + 1}: "
            + ", ".join(f"{s} {times[s][-1][0]:.3f}s wall {times[s][-1][1]:.3f}s cpu" for s in STRATEGIES),
            flush=True,
        )
    medians = {s: statistics.median(t[0] for t in times[s]) for s in STRATEGIES}
    cpu = {s: statistics.median(t[1] for t in times[s]) for s in STRATEGIES}
    # Counted before model_leaks merges PEFT's factors back into plain weights.
    parameters = {s: sum(p.numel() for p in prepared[s][0].parameters()) for s in STRATEGIES}
    leaks = model_leaks(prepared, originals)

    memory = {}
    for strategy in STRATEGIES:
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.step_overhead",
                "--memory-of",
                strategy,
                "--threads",
                str(args.threads),
                "--basis",
                args.basis,
                "--model",
                args.model,
                "--device",
                args.device,
                "--seq",
                str(args.seq),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        memory[strategy] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"memory {strategy}: {memory[strategy]}", flush=True)

    result = {
        "full_s": medians["full"],
        "adaptive_svd_s": medians["adaptive_svd"],
        "peft_osf_s": medians["peft_osf"],
        "ratio_vs_full": medians["adaptive_svd"] / medians["full"],
        "ratio_vs_peft_osf": medians["adaptive_svd"] / medians["peft_osf"],
        "full_cpu_s": cpu["full"],
        "adaptive_svd_cpu_s": cpu["adaptive_svd"],
        "peft_osf_cpu_s": cpu["peft_osf"],
        "cpu_ratio_vs_full": cpu["adaptive_svd"] / cpu["full"],
        "cpu_ratio_vs_peft_osf": cpu["adaptive_svd"] / cpu["peft_osf"],
        "mem_ratio_vs_full": memory["adaptive_svd"]["training_mb"] / memory["full"]["training_mb"],
        "peak_ratio_vs_full": memory["adaptive_svd"]["peak_mb"] / memory["full"]["peak_mb"],
        "peft_osf_mem_ratio_vs_full": memory["peft_osf"]["training_mb"] / memory["full"]["training_mb"],
        "leak": projected_adamw_leak((64, 64), 32, steps=200, lr=1e-3, weight_decay=0.01),
        "peft_osf_leak": peft_osf_leak((64, 64), 32, steps=200, lr=1e-3, weight_decay=0.01),
        **leaks,
        "memory": memory,
        "parameters": parameters,
        "timed_steps_each": len(times["full"]),
        "basis": args.basis,
        "model": args.model,
        "device": str(device),
        "seq": args.seq,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
