"""One attempt, in this process: what ``execute`` reports for each way a task can end."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from jobbers.models import ErrorInfo, Outcome, RetryPolicy, Status, TaskRecord
from jobbers.registry import TaskContext, TaskSpec, register_task
from jobbers.worker.execution import execute

pytestmark = pytest.mark.anyio


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


async def add(x: int, y: int) -> int:
    return x + y


def whoami(ctx: TaskContext) -> dict[str, Any]:
    return {"thread": threading.current_thread().name, "id": ctx.task_id, "n": ctx.attempt}


def broken() -> None:
    raise Unprintable


async def hang() -> None:
    await asyncio.sleep(60)


def nan() -> float:
    return float("nan")


def echo(value: Any) -> Any:
    return value


SPECS: dict[str, TaskSpec[..., Any]] = {
    fn.__name__: register_task(fn, name=f"unit.{fn.__name__}")
    for fn in (add, whoami, broken, hang, nan, echo)
}


def record(name: str, timeout: float | None = None, **kwargs: Any) -> TaskRecord:
    return TaskRecord(
        id="t1",
        name=f"unit.{name}",
        queue="default",
        kwargs=kwargs,
        status=Status.STARTED,
        priority=0,
        policy=RetryPolicy(timeout=timeout),
        submitted_at=0.0,
        updated_at=0.0,
    )


async def run(name: str, timeout: float | None = None, **kwargs: Any) -> Outcome:
    ctx = TaskContext("t1", 2, "w", "host")
    return await execute(SPECS.get(name), record(name, timeout, **kwargs), ctx)


def error(outcome: Outcome) -> ErrorInfo:
    assert outcome.error is not None
    return outcome.error


async def test_async_result() -> None:
    outcome = await run("add", x=1, y=2)
    assert (outcome.kind, outcome.result) == ("completed", 3)


async def test_sync_runs_in_a_thread_with_its_context() -> None:
    outcome = await run("whoami")
    assert outcome.result == {"thread": "jobbers-sync-task", "id": "t1", "n": 2}


async def test_wrong_kwargs_fail_the_attempt() -> None:
    outcome = await run("add", x=1)
    assert outcome.kind == "failed"
    assert error(outcome).type == "InvalidArguments"
    assert "missing y" in error(outcome).message


async def test_unprintable_exception_is_still_reported() -> None:
    outcome = await run("broken")
    assert error(outcome).type.endswith("Unprintable")
    assert error(outcome).message == "<unprintable Unprintable>"


async def test_timeout_is_its_own_outcome() -> None:
    started = time.monotonic()
    outcome = await run("hang", timeout=0.05)
    assert time.monotonic() - started < 1
    assert outcome.kind == "timeout"
    assert error(outcome).type == "TimeoutError"
    assert "OSError" in error(outcome).bases, "retry_on=(OSError,) retries timeouts too"


async def test_results_must_be_strict_json() -> None:
    outcome = await run("nan")
    assert outcome.kind == "failed"
    assert "not JSON-serialisable" in error(outcome).message


@pytest.mark.parametrize(("cap", "kept"), [(101, True), (100, False), (1, False)])
async def test_a_result_over_the_cap_fails_for_good(cap: int, kept: bool) -> None:
    """The cap counts the result's compact JSON: fifty zeros in a list are 101 bytes."""
    ctx = TaskContext("t1", 1, "w", "host")
    outcome = await execute(
        SPECS["echo"], record("echo", value=[0] * 50), ctx, max_result_bytes=cap
    )
    if kept:
        assert outcome.kind == "completed"
        assert outcome.result == [0] * 50
    else:
        assert outcome.kind == "failed"
        assert error(outcome).type == "ResultTooLarge"
        assert error(outcome).retryable is False
        assert outcome.result is None


async def test_unknown_task() -> None:
    outcome = await run("missing")
    assert outcome.kind == "failed"
    assert error(outcome).type == "UnknownTask"
