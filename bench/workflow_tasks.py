"""The tasks ``bench/workflows.py`` runs: a fan-out of no-op children into one collector."""

from __future__ import annotations

from jobbers.registry import task
from jobbers.workflows import FanOut, fan_out, step


@task(name="bench.noop")
def noop() -> None:
    return None


@task(name="bench.collect")
def collect(values: list[None] | None = None) -> int:
    return len(values or [])


@task(name="bench.spread")
def spread(n: int) -> FanOut:
    return fan_out([step(noop) for _ in range(n)], step(collect).inputs("values"))


@task(name="bench.done")
def done(parts: dict[str, int] | None = None) -> int:
    return sum((parts or {}).values())
