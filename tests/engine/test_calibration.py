"""Calibration at the cost it must have: padded batches whose padding never enters a statistic, one
statistic per distinct input, one layer's statistics at a time, and the Gram route where a layer has
fewer calibration tokens than features, all keeping the subspace the float64 covariance route keeps."""

import gc
import weakref

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from app.jobs.strategies import Retention
from worker.engine.data import collate, encode
from worker.engine.strategies.adaptive_svd import calibration, strategy
from worker.engine.strategies.adaptive_svd.calibration import calibration_batches, observe, observe_by_block
from worker.engine.strategies.adaptive_svd.retention import kept_rank
from worker.engine.strategies.adaptive_svd.subspace import Moments, activation_basis, energy_rank
from worker.engine.targets import find_targets
from worker.tiny import build_tiny_causal_lm, build_tiny_t5, build_tiny_tokenizer

from .conftest import fact_records


def build_tiny_gpt2():
    tokenizer = build_tiny_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=128)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).eval(), tokenizer


BUILDERS = {"llama": (build_tiny_causal_lm, "causal"), "gpt2-conv1d": (build_tiny_gpt2, "causal"),
            "t5": (build_tiny_t5, "seq2seq")}


def _examples(tokenizer, kind, count=12):
    """Records of many lengths, so that batches pad."""
    records = [{"prompt": record["prompt"] * (1 + i % 4), "completion": record["completion"] * (1 + i % 3)}
               for i, record in enumerate(fact_records("t", count, seed=0))]
    return encode(records, tokenizer, kind, 128)


def _gatherer(store):
    """Per target: xᵀx and yᵀy in float64, the token count and the target whose input statistics it shares."""
    def record(_source, target, x, y, reader):
        sums = store.setdefault(target.name, [0, 0, 0, None])
        sums[0] = sums[0] + x.double().T @ x.double()
        sums[1] = sums[1] + y.double().T @ y.double()
        sums[2] += len(x)
        sums[3] = reader.name
    return record


@pytest.mark.parametrize("name", list(BUILDERS))
def test_padded_batches_give_the_statistics_of_one_unpadded_example_at_a_time(name, monkeypatch):
    builder, kind = BUILDERS[name]
    model, tokenizer = builder()
    examples = _examples(tokenizer, kind)
    targets = find_targets(model)
    one_at_a_time = [collate([e], tokenizer.pad_token_id) for e in examples]
    monkeypatch.setattr(calibration, "CALIBRATION_BATCH_TOKENS", 200)  # several batches, each padded
    batches = calibration_batches(examples, len(examples), tokenizer.pad_token_id, "cpu",
                                  torch.Generator().manual_seed(0))
    assert len(batches) > 1 and any((b["attention_mask"] == 0).any() for b in batches)

    expected, together, by_block = {}, {}, {}
    observe(model, targets, [one_at_a_time], _gatherer(expected))
    observe(model, targets, [batches], _gatherer(together))
    for _members in observe_by_block(model, targets, [batches[:2], batches[2:]], _gatherer(by_block)):
        pass
    for gathered in (together, by_block):
        for target in targets:
            want, got = expected[target.name], gathered[target.name]
            assert got[2] == want[2], target.name  # every real token, no padded one
            for i in (0, 1):
                assert (got[i] - want[i]).abs().max() <= 1e-5 * want[i].abs().max(), target.name


def test_the_draw_is_the_seeded_one_calibration_always_made():
    examples = _examples(build_tiny_tokenizer(), "causal", count=40)
    batches = calibration_batches(examples, 16, 0, "cpu", torch.Generator().manual_seed(3))
    chosen = torch.randperm(len(examples), generator=torch.Generator().manual_seed(3))[:16].tolist()
    drawn = sorted(tuple(row[mask.bool()].tolist()) for b in batches
                   for row, mask in zip(b["input_ids"], b["attention_mask"], strict=True))
    assert drawn == sorted(tuple(examples[i].input_ids) for i in chosen)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_targets_that_read_one_tensor_share_its_statistics(name):
    builder, kind = BUILDERS[name]
    model, tokenizer = builder()
    batches = calibration_batches(_examples(tokenizer, kind), 4, tokenizer.pad_token_id, "cpu",
                                  torch.Generator().manual_seed(0))
    gathered = {}
    observe(model, find_targets(model), [batches], _gatherer(gathered))
    shares = {  # (reader's suffix, the suffixes of the targets that read its input too)
        "llama": [("self_attn.q_proj", ("self_attn.k_proj", "self_attn.v_proj")),
                  ("mlp.gate_proj", ("mlp.up_proj",))],
        "gpt2-conv1d": [],  # q/k/v are one fused matrix
        # Cross-attention's keys and values read the encoder's output, its queries the decoder's own.
        "t5": [("SelfAttention.q", ("SelfAttention.k", "SelfAttention.v")),
               ("EncDecAttention.k", ("EncDecAttention.v",))],
    }[name]
    for target, sums in gathered.items():
        expected = next((target.removesuffix(suffix) + reader for reader, followers in shares
                         for suffix in followers if target.endswith(suffix)), target)
        assert sums[3] == expected, target
    followers = sum(sums[3] != target for target, sums in gathered.items())
    assert followers == {"llama": 2 * 3, "gpt2-conv1d": 0, "t5": 4 * 2 + 2 * 1}[name]


def test_statistics_are_held_for_one_layer_at_a_time(monkeypatch):
    model, tokenizer = build_tiny_causal_lm(layers=3)
    batches = calibration_batches(_examples(tokenizer, "causal"), 8, tokenizer.pad_token_id, "cpu",
                                  torch.Generator().manual_seed(0))
    live, peak = weakref.WeakSet(), [0]

    class Counted(Moments):
        def __init__(self, width):
            super().__init__(width)
            gc.collect()
            live.add(self)
            peak[0] = max(peak[0], len(live))

    monkeypatch.setattr(strategy, "Moments", Counted)
    targets = find_targets(model)
    ranks = {t.name: min(t.shape) // 2 for t in targets}
    bases = list(strategy.old_input_bases(model, targets, ranks, ranks, batches, batches, Retention()))
    assert len(bases) == len(targets) and all(basis.shape[1] for _, basis in bases)
    # A layer's 4 distinct inputs (q/k/v's, o's, gate/up's, down's), for earlier tasks and the reference set.
    assert peak[0] == 8


def _float64_basis(rows: torch.Tensor, energy: float, cap: int) -> torch.Tensor:
    """The route before issue 21: the float64 eigendecomposition of the n×n covariance."""
    rows = rows.double()
    values, vectors = torch.linalg.eigh(rows.T @ rows / len(rows))
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)
    return vectors[:, :min(cap, energy_rank(values, energy))]


def _energy(rows: torch.Tensor, rank: int) -> float:
    values = torch.linalg.eigvalsh(rows.double().T @ rows.double()).flip(0)
    return float(values[:rank].sum() / values.sum())


def _largest_principal_angle(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    qa, qb = torch.linalg.qr(a.double())[0], torch.linalg.qr(b.double())[0]
    cosines = torch.linalg.svdvals(qa.T @ qb)
    return float(torch.arccos(cosines.min().clamp(max=1.0)))


@pytest.mark.parametrize("rows", [20, 300], ids=["gram", "covariance"])
def test_float32_moments_keep_the_float64_covariances_subspace(rows):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 64, generator=generator) * torch.logspace(0, -2, 64)  # a decaying spectrum
    moments = Moments(64)
    for part in x.split(7):
        moments.add(part)
    assert (moments.sum is None) == (rows < 64)
    for energy in (0.5, 0.9, 0.99):
        kept = activation_basis(moments.spectrum(), energy, cap=64)
        assert _largest_principal_angle(kept, _float64_basis(x, energy, cap=64)) < 1e-3, energy


@pytest.mark.parametrize("count", [2, 40], ids=["fewer-tokens-than-features", "more"])
def test_a_tiny_models_kept_bases_span_what_the_float64_covariance_route_keeps(count):
    model, tokenizer = build_tiny_causal_lm()
    examples = _examples(tokenizer, "causal", count=40)
    targets = find_targets(model)
    config = Retention()
    ranks = {t.name: kept_rank(min(t.shape), 0.6) for t in targets}
    prior = calibration_batches(examples, count, tokenizer.pad_token_id, "cpu", torch.Generator().manual_seed(1))
    tokens = sum(int(b["attention_mask"].sum()) for b in prior)
    assert (tokens < 64) == (count == 2)

    rows = {}
    observe(model, targets, [prior], lambda _s, target, x, _y, _r: rows.setdefault(target.name, []).append(x))
    for target, kept in strategy.old_input_bases(model, targets, ranks, ranks, prior, [], config):
        expected = _float64_basis(torch.cat(rows[target.name]), config.energy, ranks[target.name])
        assert kept.shape[1] <= min(tokens, ranks[target.name])
        if kept.shape[1] != expected.shape[1]:
            # Only where the leading eigenvalues' energy is the threshold to float32's rounding (here one
            # input's: 0.89999994 in float32, 0.90000006 in float64), so either rank is right.
            rank = min(kept.shape[1], expected.shape[1])
            assert abs(kept.shape[1] - expected.shape[1]) == 1, target.name
            assert abs(_energy(torch.cat(rows[target.name]), rank) - config.energy) < 1e-6, target.name
            kept, expected = kept[:, :rank], expected[:, :rank]
        assert _largest_principal_angle(kept, expected) < 1e-3, target.name
