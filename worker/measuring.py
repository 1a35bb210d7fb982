"""Running a model on what a version is judged by: the tasks' held-out records and the lineage's
evaluation suites. Each result is logged as a metrics event; judging them is ``worker.judging``'s."""

from __future__ import annotations

from typing import Any, Protocol

from app.core.db.session import session_scope
from app.core.enums import EventType
from app.files.datasets import read_records
from app.lineages.service import suite_file_hashes
from app.lineages.suites import GENERAL, SUITES, default_records
from worker.cache import local_file
from worker.job_inputs import JobInputs
from worker.progress import ItemProgress


class Emit(Protocol):
    """Log one event of the running job: ``app.jobs.attempts.log_event`` bound to the job's id."""

    def __call__(self, message: str, *, type: EventType = ..., data: dict | None = ..., level: str = ...) -> None: ...


def score(model, tokenizer, records, metric, labels, name: str, emit: Emit, progress: ItemProgress) -> dict:
    from worker.evaluation import score_task

    with progress.scoring(name, len(records)):
        result = score_task(model, tokenizer, records, metric=metric, labels=labels)
    emit(f"Task {name}: {metric} {result['score']:.3f} on {result['n']} examples ({result['seconds']:.1f}s)",
         type=EventType.METRICS, data={"task": name, "metric": metric,
                               **{k: v for k, v in result.items() if k != "examples"}})  # those go with the cell
    return result


def score_tasks(model, tokenizer, inputs: JobInputs, emit: Emit, progress: ItemProgress) -> dict[str, dict]:
    """Every task the lineage learned, and the new one."""
    scores = {task.name: score(model, tokenizer, task.eval_records, task.metric, task.labels, task.name, emit,
                               progress)
              for task in inputs.learned}
    scores[inputs.task_name] = score(model, tokenizer, inputs.eval_records, inputs.metric, inputs.labels,
                                     inputs.task_name, emit, progress)
    return scores


def task_items(inputs: JobInputs) -> int:
    """How many held-out records ``score_tasks`` scores."""
    return sum(len(task.eval_records) for task in inputs.learned) + len(inputs.eval_records)


def suite_data(model_id: str) -> dict[str, list[dict]]:
    """Each suite's records: the lineage's file for the suite's purpose, else the suite's built-in data."""
    with session_scope() as session:
        files = suite_file_hashes(session, model_id)
    return {name: read_records(local_file(files[suite.purpose])) if suite.purpose in files
            else default_records(suite) for name, suite in SUITES.items()}


def reference_texts(suites: dict[str, list[dict]]) -> list[str]:
    """The texts of the general suite's data (``suite_data``), which is the lineage's reference set."""
    return [record["text"] for record in suites.get(GENERAL.name, [])]


def _shown(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def run_suites(model, tokenizer, data: dict[str, list[dict]], emit: Emit, progress: ItemProgress,
               baselines: dict[str, dict] | None = None) -> dict[str, dict]:
    """suite name -> its results on the model, for the suites in ``data``; ``baselines``: each suite's
    results on the lineage's base (None when the model is the base)."""
    from worker.evaluation.suites import runner

    results = {}
    for name, records in data.items():
        baseline = (baselines or {}).get(name)
        with progress.scoring(name, len(records)):
            results[name] = result = runner(name)(model, tokenizer, records, baseline)
        # Said with what it means against the base (general_answers: general_kept, the default gate's figure),
        # measures first; a figure not measured on this run (accuracy over questions not asked) is left out.
        judged, measures = SUITES[name].judge(result, baseline)
        shown = {**measures, **judged}
        emit(f"Suite {name}: " + ", ".join(f"{key} {_shown(value)}" for key, value in shown.items()
                                           if value is not None and not isinstance(value, list | dict)),
             type=EventType.METRICS, data={"suite": name, **judged})
    return results
