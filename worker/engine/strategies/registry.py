"""The worker's strategy implementations, by name; each must match a spec the API knows."""

from __future__ import annotations

from app.jobs import strategies as specs

from .base import Strategy

_STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if specs.get(strategy.spec.name) is not strategy.spec:
        raise ValueError(f"strategy {strategy.spec.name!r} must use the spec registered in app.jobs.strategies")
    _STRATEGIES[strategy.spec.name] = strategy
    return strategy


def unregister(name: str) -> None:
    _STRATEGIES.pop(name, None)


def get(name: str) -> Strategy:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {names()}, got {name!r}") from None


def names() -> tuple[str, ...]:
    return tuple(_STRATEGIES)
