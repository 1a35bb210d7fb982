"""Updates never touch the kept subspace, whatever AdamW and weight decay do; PEFT OSF's do."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from app.jobs.strategies import Retention
from bench.leak import peft_osf_leak, projected_adamw_leak
from worker.engine import TrainConfig, train_task
from worker.engine.strategies.adaptive_svd.subspace import weight_bases
from worker.engine.targets import find_targets
from worker.tiny import build_tiny_causal_lm, build_tiny_tokenizer

from .conftest import fact_records


@pytest.mark.parametrize(
    ("shape", "rank"),
    [((64, 64), 32), ((64, 64), 48), ((48, 96), 16), ((96, 48), 40)],
    ids=["square-half", "square-complement", "wide", "tall-complement"],
)
def test_projected_adamw_leaks_below_1e_5_after_200_steps(shape, rank):
    assert projected_adamw_leak(shape, rank, steps=200, lr=1e-3, weight_decay=0.01) < 1e-5


def test_peft_osf_leaks_far_more_under_adamw():
    ours = projected_adamw_leak((64, 64), 32, steps=200, lr=1e-3, weight_decay=0.01)
    theirs = peft_osf_leak((64, 64), 32, steps=200, lr=1e-3, weight_decay=0.01)
    print(f"leak after 200 AdamW steps: adaptive_svd {ours:.2e}, PEFT OSF {theirs:.3f}")
    # The issue measured about 0.19 for PEFT OSF; anything above 1% shows the gradient-only projection leaks.
    assert theirs > 1e-2
    assert ours < theirs / 1000


def build_tiny_gpt2():
    """GPT-2 stores its linears as Conv1D (in, out): the transposed layout must be handled too."""
    tokenizer = build_tiny_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=128)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).eval(), tokenizer


@pytest.mark.parametrize("builder", [build_tiny_causal_lm, build_tiny_gpt2], ids=["llama", "gpt2-conv1d"])
def test_trained_layers_answer_kept_inputs_exactly_as_before(builder):
    model, tokenizer = builder()
    before = {t.name: t.weight.detach().clone() for t in find_targets(model)}
    config = TrainConfig(
        n_epochs=4,
        batch_size=8,
        learning_rate=3e-3,
        retention=Retention(basis="weights"),
        warmup_ratio=0.0,
    )
    result = train_task(model, tokenizer, fact_records("t", 32, seed=0), config)
    # The kept basis is recomputed where training computed it: a GPU's SVD differs from the CPU's by
    # ~1e-4 in the subspace, which would show here as a leak of ~1e-6.
    device = result.model.device
    result.model.cpu()
    generator = torch.Generator().manual_seed(0)
    for target in find_targets(result.model):
        info = result.retention["matrices"][target.name]
        orient = (lambda w: w.T) if target.transposed else (lambda w: w)
        original, trained = orient(before[target.name]), orient(target.weight.detach())
        kept_in = weight_bases(original.to(device), info["weight_rank"])[1].cpu()
        assert (trained - original).norm() > 1e-3, f"{target.name} did not train"
        x = kept_in @ torch.randn(info["weight_rank"], 5, generator=generator)  # inputs in the kept subspace
        assert torch.allclose(trained @ x, original @ x, atol=1e-6), target.name
        assert torch.allclose(
            target.module(x.T), before_module_output(target, before[target.name], x.T), atol=1e-6
        )


def before_module_output(target, original_weight, x):
    """The layer's output with its original weight and its (frozen) bias."""
    saved = target.weight.detach().clone()
    with torch.no_grad():
        target.weight.copy_(original_weight)
        output = target.module(x)
        target.weight.copy_(saved)
    return output
