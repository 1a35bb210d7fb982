"""What this server accepts, for clients that offer choices (the CLI, the dashboard): read from the
registries and name tuples the validation itself uses, so a client never holds a stale copy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.enums import JOB_STATUSES, METRICS, PHASES, SHARDINGS, TERMINAL_STATUSES
from app.jobs import strategies
from app.lineages.gates import default_gates, gates_known


class StrategyCapability(BaseModel):
    name: str
    description: str
    settings_field: str | None = Field(description="The key of 'continual' that holds its settings.")
    settings_schema: dict[str, Any] = Field(description="JSON schema of those settings.")
    needs_prior_tasks: bool = Field(description="Whether it trains with inputs of the tasks learned before.")
    shardings: list[str]
    default_learning_rate: float = Field(description="continual.learning_rate when a job sets none.")


class Capabilities(BaseModel):
    object: Literal["capabilities"] = "capabilities"
    strategies: list[StrategyCapability]
    default_strategy: str
    metrics: list[str]
    phases: list[str] = Field(description="A running job's phases, in order.")
    statuses: list[str]
    terminal_statuses: list[str]
    gates: list[str]
    default_gates: dict[str, float] = Field(description="The gates of a lineage registered without naming any.")
    shardings: list[str]


def capabilities() -> Capabilities:
    return Capabilities(
        strategies=[StrategyCapability(name=s.name, description=s.description, settings_field=s.settings_field,
                                       settings_schema=s.settings.model_json_schema(),
                                       needs_prior_tasks=s.needs_prior_tasks, shardings=list(s.shardings),
                                       default_learning_rate=s.learning_rate)
                    for s in strategies.specs()],
        default_strategy=strategies.DEFAULT_STRATEGY, metrics=list(METRICS), phases=list(PHASES),
        statuses=list(JOB_STATUSES), terminal_statuses=list(TERMINAL_STATUSES), gates=list(gates_known()),
        default_gates=default_gates(), shardings=list(SHARDINGS))
