"""The pieces the method is built from: projection, ranks, importance, activation bases."""

from itertools import pairwise

import pytest
import torch

from app.jobs.strategies import Retention
from worker.engine import TrainConfig, train_task
from worker.engine.data import encode
from worker.engine.strategies.adaptive_svd.calibration import calibration_batches
from worker.engine.strategies.adaptive_svd.importance import cosine_importance
from worker.engine.strategies.adaptive_svd.retention import kept_rank, kept_ratio
from worker.engine.strategies.adaptive_svd.subspace import MatrixProjector, Moments, activation_basis, union
from worker.engine.targets import find_targets
from worker.tiny import build_tiny_causal_lm, build_tiny_t5

from .conftest import fact_records


def _orthonormal(dim, rank, seed):
    q, _ = torch.linalg.qr(torch.randn(dim, rank, generator=torch.Generator().manual_seed(seed)))
    return q


@pytest.mark.parametrize(
    ("out_rank", "in_rank"), [(8, 20), (40, 4), (0, 30)], ids=["kept", "complement", "in-only"]
)
@pytest.mark.parametrize("transposed", [False, True])
def test_projection_is_idempotent_and_orthogonal(out_rank, in_rank, transposed):
    m, n = 48, 32
    projector = MatrixProjector(
        _orthonormal(m, out_rank, 1), _orthonormal(n, in_rank, 2), transposed=transposed
    )
    shape = (n, m) if transposed else (m, n)
    x, y = torch.randn(shape, dtype=torch.float32), torch.randn(shape, dtype=torch.float32)
    px = projector(x.clone())
    assert torch.allclose(projector(px.clone()), px, atol=1e-5)  # idempotent
    # Orthogonal (self-adjoint): <P x, y> == <x, P y>, and x - P x is orthogonal to every P y.
    assert torch.allclose((px * y).sum(), (x * projector(y.clone())).sum(), atol=1e-4)
    assert abs(float(((x - px) * projector(y.clone())).sum())) < 1e-4
    assert px.norm() < x.norm()


def test_kept_ratio_respects_bounds_and_grows_with_tasks():
    config = Retention(min_ratio=0.1, target_ratio=0.6)
    for importance in (0.0, 0.3, 1.0):
        ratios = [kept_ratio(importance, config, t) for t in range(6)]
        assert all(config.min_ratio <= r <= config.max_ratio for r in ratios)
        assert all(later > earlier for earlier, later in pairwise(ratios))
        assert ratios[0] == pytest.approx(
            config.min_ratio + importance * (config.target_ratio - config.min_ratio)
        )
    fixed = Retention(mode="fixed", fixed_ratio=0.5)
    assert kept_ratio(0.0, fixed, 0) == kept_ratio(1.0, fixed, 0) == 0.5
    assert kept_rank(64, 0.999) == 63 and kept_rank(64, 0.0) == 0


def test_kept_ranks_grow_with_task_count_in_training():
    records = fact_records("t", 16, seed=0)
    config = TrainConfig(n_epochs=1, retention=Retention(basis="weights"))
    ranks = []
    for tasks_learned in (0, 3):
        model, tokenizer = build_tiny_causal_lm()
        result = train_task(model, tokenizer, records, config, tasks_learned=tasks_learned)
        matrices = result.retention["matrices"].values()
        for info in matrices:
            d = min(info["shape"])
            assert round(d * 0.1) <= info["weight_rank"] <= round(d * 0.9)
        ranks.append([info["weight_rank"] for info in matrices])
    assert all(later >= earlier for earlier, later in zip(*ranks, strict=True)) and sum(ranks[1]) > sum(ranks[0])


def test_a_model_with_smaller_weights_takes_the_same_relative_step():
    # Adam moves each weight by about the learning rate whatever its scale: at one rate a family whose
    # weights are five times smaller (Gemma 3's against SmolLM2's) changed five times as much and lost its
    # general answers. With relative_step (the default) one rate changes both by the same share.
    records = fact_records("t", 8, seed=0)

    def relative_change(weight_scale: float, relative_step: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        model, tokenizer = build_tiny_causal_lm()
        targets = find_targets(model, None)
        with torch.no_grad():
            for target in targets:
                target.weight.mul_(weight_scale)
        before = [target.weight.detach().clone() for target in targets]
        config = TrainConfig(n_epochs=1, batch_size=8, learning_rate=1e-3,
                             retention=Retention(relative_step=relative_step))
        result = train_task(model, tokenizer, records, config)
        changes = [float((t.weight.detach() - w).norm() / w.norm()) for t, w in zip(targets, before, strict=True)]
        return sorted(changes)[len(changes) // 2], result.retention["summary"]["step_scale"]

    (large, large_scale), (small, small_scale) = relative_change(1.0, True), relative_change(0.2, True)
    assert small_scale == pytest.approx(0.2 * large_scale, rel=1e-3) and large_scale < 1
    assert small == pytest.approx(large, rel=0.3)
    (plain_large, plain_scale), (plain_small, _) = relative_change(1.0, False), relative_change(0.2, False)
    assert plain_scale == 1.0 and plain_small > 3 * plain_large


@pytest.mark.parametrize(("builder", "kind"), [(build_tiny_causal_lm, "causal"), (build_tiny_t5, "seq2seq")])
def test_importance_is_finite_and_normalised(builder, kind):
    model, tokenizer = builder()
    examples = encode(fact_records("t", 8, seed=0), tokenizer, kind, 64)
    inputs = calibration_batches(examples, 8, tokenizer.pad_token_id, "cpu", torch.Generator().manual_seed(0))
    importance = cosine_importance(model, find_targets(model), inputs)
    values = torch.tensor(list(importance.values()))
    assert torch.isfinite(values).all()
    assert values.min() == 0.0 and values.max() == 1.0
    assert len(set(values.tolist())) > 2  # it actually tells matrices apart


@pytest.mark.parametrize("energy", [0.5, 0.9, 0.99])
def test_activation_basis_reaches_requested_energy(energy):
    generator = torch.Generator().manual_seed(0)
    # Inputs with a decaying spectrum, as real activations have.
    x = torch.randn(500, 32, generator=generator) * torch.logspace(0, -2, 32)
    covariance = x.T @ x / len(x)
    moments = Moments(32)
    moments.add(x)
    spectrum = moments.spectrum()
    basis = activation_basis(spectrum, energy, cap=32)
    def captured(b):
        return float(torch.trace(b.T @ covariance @ b) / torch.trace(covariance))
    assert captured(basis) >= energy - 1e-6
    assert captured(basis[:, :-1]) < energy  # and it is the smallest such basis
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-5)
    assert activation_basis(spectrum, energy, cap=2).shape[1] <= 2


def test_union_is_orthonormal_and_spans_both():
    first, second = _orthonormal(32, 6, 1), _orthonormal(32, 5, 2)
    joint = union(
        first, torch.cat([second, first[:, :2]], dim=1), cap=32
    )  # overlapping directions count once
    assert joint.shape[1] == 11
    assert torch.allclose(joint.T @ joint, torch.eye(11), atol=1e-5)
    for part in (first, second):
        assert torch.allclose(joint @ (joint.T @ part), part, atol=1e-5)
    assert union(first, second, cap=8).shape[1] == 8


def test_union_adds_nothing_where_the_first_basis_already_covers_the_second():
    # Late in a long lineage the earlier tasks' basis holds nearly all of the reference set's directions:
    # what is left of them is float32 noise, and none of it may enter the kept basis as a direction.
    first = _orthonormal(64, 60, 1)
    covered = first @ torch.randn(60, 40, generator=torch.Generator().manual_seed(3))
    covered = covered / covered.norm(dim=0)
    assert torch.equal(union(first, covered, cap=64), first)
    novel = _orthonormal(64, 64, 4)[:, 62:]  # two directions at most partly outside span(first)
    joint = union(first, torch.cat([covered, novel], dim=1), cap=64)
    assert joint.shape[1] == 62 and torch.allclose(joint.T @ joint, torch.eye(62), atol=1e-5)


def test_a_first_job_keeps_the_reference_sets_inputs_within_its_share_of_the_kept_rank():
    # A lineage's first job has no earlier task: its only old data is the reference set (general text).
    # Without it the job fell back to the weights basis; with it the kept input directions are the
    # reference set's, at most reference_share of each matrix's kept rank, so the task keeps room to learn.
    records, general = fact_records("t", 16, seed=0), fact_records("g", 32, seed=5)
    texts = [r["prompt"] + r["completion"] for r in general]
    share = 0.25
    config = TrainConfig(n_epochs=1, retention=Retention(energy=0.999, reference_energy=0.999,
                                                       reference_share=share))
    model, tokenizer = build_tiny_causal_lm()
    result = train_task(model, tokenizer, records, config, reference_texts=texts)
    assert result.retention["summary"]["basis"] == "activations"
    for name, info in result.retention["matrices"].items():
        assert 0 < info["activation_rank"] <= round(share * info["weight_rank"]), name
        assert info["kept_in"] == info["activation_rank"] and info["kept_out"] == 0

    # A later job keeps earlier tasks' inputs first, then the reference set's where the kept rank has room:
    # general ability is old data on every job, not only the first.
    prior = fact_records("p", 32, seed=6)
    config = TrainConfig(n_epochs=1, retention=Retention(energy=0.5, reference_energy=0.999,
                                                       reference_share=share))
    model, tokenizer = build_tiny_causal_lm()
    both = train_task(model, tokenizer, records, config, tasks_learned=1, prior_records=prior, reference_texts=texts)
    model, tokenizer = build_tiny_causal_lm()
    tasks_only = train_task(model, tokenizer, records, config, tasks_learned=1, prior_records=prior)
    with_reference, without = both.retention["matrices"], tasks_only.retention["matrices"]
    assert all(without[name]["activation_rank"] <= info["activation_rank"] <= info["weight_rank"]
               for name, info in with_reference.items())
    assert any(info["activation_rank"] > without[name]["activation_rank"] for name, info in with_reference.items())


def test_matrices_that_read_one_input_hold_its_kept_basis_once():
    # q/k/v read one input, as do gate/up: at one kept rank they keep the same input directions, and the job
    # holds that basis once (at 8B shapes, 3 of a layer's 7 bases), not once a matrix.
    config = TrainConfig(n_epochs=1, retention=Retention(mode="fixed", fixed_ratio=0.5, reference_share=0))
    model, tokenizer = build_tiny_causal_lm()
    result = train_task(model, tokenizer, fact_records("t", 16, seed=0), config, tasks_learned=1,
                        prior_records=fact_records("p", 32, seed=6))
    matrices = result.retention["matrices"]

    def floats(name):  # a side stores its basis or, where smaller, the basis's complement
        info = matrices[name]
        return info["shape"][1] * min(info["kept_in"], info["shape"][1] - info["kept_in"])

    layers = sorted({name.rsplit(".", 2)[0] for name in matrices})
    for layer in layers:
        assert len({matrices[f"{layer}.self_attn.{m}_proj"]["kept_in"] for m in "qkv"}) == 1
    once = sum(floats(f"{layer}.{m}") for layer in layers
               for m in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"))
    assert result.retention["summary"]["basis_parameters"] == once < sum(map(floats, matrices))


def test_the_reference_sets_room_does_not_grow_with_the_tasks_learned():
    # The kept rank grows with every task learned; the reference set's room stays what a first job gives it,
    # so a long lineage's late tasks keep room to learn (bench/RESULTS.md, "Late-task plasticity").
    texts = [r["prompt"] + r["completion"] for r in fact_records("g", 32, seed=5)]
    config = TrainConfig(n_epochs=1, retention=Retention(reference_energy=0.999, reference_share=0.25))
    kept = []
    for tasks_learned in (0, 8):
        model, tokenizer = build_tiny_causal_lm()
        result = train_task(model, tokenizer, fact_records("t", 16, seed=0), config, tasks_learned=tasks_learned,
                            reference_texts=texts)
        kept.append(result.retention["matrices"])
    first, late = kept
    assert all(late[name]["weight_rank"] > info["weight_rank"] for name, info in first.items())
    assert all(late[name]["activation_rank"] == info["activation_rank"] for name, info in first.items())


def test_reference_texts_are_kept_where_the_model_starts_an_answer():
    from types import SimpleNamespace

    from worker.engine.trainer import reference_records

    chat, plain = SimpleNamespace(chat_template="{{ messages }}"), SimpleNamespace(chat_template=None)
    (turn,) = reference_records(["The sun rises in the east."], chat)
    assert turn["messages"][0] == {"role": "user", "content": "The sun rises in the east."}
    assert turn["messages"][-1]["role"] == "assistant"  # rendered up to the start of the answer
    # A base model is asked in the question form: its answer starts after "Answer:", as a task's does.
    assert reference_records(["The sun rises in the east."], plain) == [
        {"prompt": "", "completion": "The sun rises in the east."},
        {"prompt": "Question: The sun rises in the east.\nAnswer:", "completion": ""}]


@pytest.mark.parametrize("settings", [{"target_ratio": Retention.max_ratio}, {"mode": "fixed", "fixed_ratio": 0.99},
                                      {"energy": 0.999}], ids=["target_ratio", "fixed_ratio", "energy"])
def test_the_highest_retention_settings_the_api_accepts_train(settings):
    # The API's bounds are the only ones: what it accepts, the engine trains with (and keeps some rank free).
    model, tokenizer = build_tiny_causal_lm()
    result = train_task(model, tokenizer, fact_records("t", 16, seed=0),
                        TrainConfig(n_epochs=1, retention=Retention(**settings)), tasks_learned=2)
    assert result.steps > 0
    assert all(info["kept_in"] < info["shape"][1] for info in result.retention["matrices"].values())
