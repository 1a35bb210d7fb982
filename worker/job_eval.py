"""Evaluating a trained version: every learned task, general ability, safety, then the gates."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import fmean

from sqlalchemy import select

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, File, Model, ModelVersion
from app.files.datasets import read_records
from app.lineages.gates import check_gates
from worker.cache import local_file
from worker.errors import JobFailed
from worker.job_inputs import JobInputs

Emit = Callable[..., None]


@dataclass
class Suites:
    reference_texts: list[str]
    safety: list[dict]


@dataclass
class VersionEvaluation:
    scores: dict[str, dict] = field(default_factory=dict)
    general: dict = field(default_factory=dict)
    safety: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    verdict: dict = field(default_factory=dict)


def lineage_suites(model_id: str) -> Suites:
    from worker.evaluation import load_default_safety_suite, load_reference_texts

    with session_scope() as session:
        model = session.get(Model, model_id)
        ref = session.get(File, model.reference_file_id) if model.reference_file_id else None
        suite = session.get(File, model.safety_file_id) if model.safety_file_id else None
        texts = ([r.get("text") or r.get("completion", "") for r in read_records(local_file(ref.sha256))]
                 if ref else load_reference_texts())
        safety = read_records(local_file(suite.sha256)) if suite else load_default_safety_suite()
    return Suites(texts, safety)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def general_and_safety(model, tokenizer, suites: Suites, emit: Emit) -> tuple[dict, dict]:
    from worker.evaluation import perplexity, safety_rates

    ppl = perplexity(model, tokenizer, suites.reference_texts)
    if not math.isfinite(ppl):
        raise JobFailed("nan_loss", "the trained model's outputs are no longer finite (reference perplexity "
                        "overflows): training diverged. Try a lower learning rate or learning_rate_multiplier")
    safety = safety_rates(model, tokenizer, suites.safety)
    emit(f"General ability: perplexity {ppl:.3f}; safety: refusal rate {_rate(safety['refusal_rate'])}, "
         f"over-refusal rate {_rate(safety['over_refusal_rate'])} ({safety['seconds']:.1f}s)",
         type="metrics", data={"perplexity": ppl, **safety})
    return {"perplexity": ppl}, safety


def score(model, tokenizer, records, metric, labels, name: str, emit: Emit) -> dict:
    from worker.evaluation import score_task

    result = score_task(model, tokenizer, records, metric=metric, labels=labels)
    emit(f"Task {name}: {metric} {result['score']:.3f} on {result['n']} examples ({result['seconds']:.1f}s)",
         type="metrics", data={"task": name, "metric": metric, **result})
    return result


def ancestry_cells(model_id: str, versions: list[int]) -> dict[tuple[str, int], float]:
    """The accuracy-matrix cells (task, version) -> score measured on the given versions."""
    with session_scope() as session:
        rows = session.execute(select(Evaluation.task_name, Evaluation.version, Evaluation.score)
                               .where(Evaluation.model_id == model_id, Evaluation.version.in_(versions))).all()
    return {(name, version): value for name, version, value in rows}


def version_metrics(model_id: str, version: int) -> dict:
    with session_scope() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                        ModelVersion.version == version))
        return dict(row.metrics or {})


def evaluate(model, tokenizer, inputs: JobInputs, suites: Suites, gates: dict, emit: Emit) -> VersionEvaluation:
    result = VersionEvaluation()
    for task in inputs.learned:
        result.scores[task.name] = score(model, tokenizer, task.eval_records, task.metric, task.labels,
                                         task.name, emit)
    result.scores[inputs.task_name] = score(model, tokenizer, inputs.eval_records, inputs.metric,
                                            inputs.labels, inputs.task_name, emit)
    result.general, result.safety = general_and_safety(model, tokenizer, suites, emit)

    base_ppl = version_metrics(inputs.model_id, inputs.ancestry[0]).get("general", {}).get("perplexity")
    if base_ppl:
        result.general["perplexity_ratio"] = result.general["perplexity"] / base_ppl
    cells = ancestry_cells(inputs.model_id, inputs.ancestry[1:])
    now = {name: r["score"] for name, r in result.scores.items()}
    forgetting, transfer = {}, []
    for task in inputs.learned:
        earlier = [v for (name, ver), v in cells.items() if name == task.name and ver >= task.version]
        if earlier:
            forgetting[task.name] = max(earlier) - now[task.name]
        if (task.name, task.version) in cells:
            transfer.append(now[task.name] - cells[(task.name, task.version)])
    acc = fmean(now.values())
    head_acc = version_metrics(inputs.model_id, inputs.base_version).get("acc")
    result.summary = {"acc": acc, "forgetting": forgetting,
                      "bwt": fmean(transfer) if transfer else None,
                      "max_forgetting": max(forgetting.values()) if forgetting else None,
                      "acc_drop": None if head_acc is None else head_acc - acc}
    measured = {"max_forgetting": result.summary["max_forgetting"], "acc_drop": result.summary["acc_drop"],
                "perplexity_ratio": result.general.get("perplexity_ratio"),
                "refusal_rate": result.safety.get("refusal_rate"),
                "over_refusal_rate": result.safety.get("over_refusal_rate")}
    result.verdict = check_gates(gates, measured)
    return result
