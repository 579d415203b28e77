"""Sync tasks declared ``isolate="process"`` run in a child process that really stops."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn, one_task
from .support import alive, events, wait_for, wait_statuses

pytestmark = pytest.mark.anyio


async def gone(pid: int, timeout: float) -> float:
    async def ended() -> bool:
        return not alive(pid)

    return await wait_for(ended, timeout, f"process {pid} to end", step=0.01)


async def started_pid(log: Path) -> int:
    async def started() -> bool:
        return bool(events(log, "start"))

    await wait_for(started, 10, "the body to start")
    [start] = events(log, "start")
    return int(start["pid"])


async def test_an_isolated_task_runs_in_a_child_and_returns_its_result(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker, ids = await one_task(store, spawn, log, "wt.isolated_sleep", seconds=0.0)
    record = (await wait_statuses(store, ids, {Status.COMPLETED}, 10))[ids[0]]
    [start] = events(log, "start")
    assert start["parent"] == worker.pid
    assert start["pid"] != worker.pid
    assert record.result == {"slept": 0.0, "pid": start["pid"]}


async def test_a_cancelled_isolated_task_stops_within_a_second(
    store: Store, spawn: Spawn, log: Path
) -> None:
    _, ids = await one_task(store, spawn, log, "wt.isolated_sleep", seconds=30.0)
    pid = await started_pid(log)
    requested = time.monotonic()
    assert (await store.cancel(ids)).cancelled == ids
    await gone(pid, 5)
    took = time.monotonic() - requested
    print(f"isolated body gone {took:.2f} s after the cancel request")
    assert took < 1.0
    assert not events(log, "end")


async def test_an_isolated_task_over_its_timeout_is_killed(
    store: Store, spawn: Spawn, log: Path
) -> None:
    _, ids = await one_task(store, spawn, log, "wt.isolated_slow", seconds=30.0)
    pid = await started_pid(log)
    [start] = events(log, "start")
    await gone(pid, 5)
    after_start = time.time() - start["at"]
    # The timeout leaves a loaded machine time to start the child before it runs out.
    assert after_start < 3.0 + 1.0, "killed within a second of its 3 s timeout"
    record = (await wait_statuses(store, ids, {Status.DEAD}, 5))[ids[0]]
    assert [a.outcome for a in record.attempts] == ["timeout"]
    assert not events(log, "end")


async def test_an_isolated_failure_keeps_its_type_and_bases(
    store: Store, spawn: Spawn, log: Path
) -> None:
    """The error crosses the process boundary whole, so retry_on still matches base classes."""
    _, ids = await one_task(store, spawn, log, "wt.isolated_fail")
    record = (await wait_statuses(store, ids, {Status.DEAD}, 10))[ids[0]]
    assert len(record.attempts) == 2, "ConnectionResetError is an OSError: retried once"
    assert record.error is not None
    assert record.error.type == "ConnectionResetError"
    assert "OSError" in record.error.bases
    assert "failed in a child process" in record.error.message


async def test_the_child_dies_with_its_worker(store: Store, spawn: Spawn, log: Path) -> None:
    worker, _ = await one_task(store, spawn, log, "wt.isolated_sleep", seconds=30.0)
    pid = await started_pid(log)
    worker.signal(signal.SIGKILL)
    worker.wait(5)
    await gone(pid, 5)
    assert not events(log, "end")


async def test_heartbeats_reach_the_worker_from_the_child(
    store: Store, spawn: Spawn, log: Path
) -> None:
    """Beating for 4 s against a 1.5 s allowance (room for a loaded machine to start the
    child): stalled unless the beats cross over."""
    _, ids = await one_task(store, spawn, log, "wt.isolated_beats", seconds=4.0)
    record = (await wait_statuses(store, ids, {Status.COMPLETED, Status.DEAD}, 15))[ids[0]]
    assert record.status == Status.COMPLETED
    assert record.result == "beat"
    assert [a.outcome for a in record.attempts] == ["completed"]


def test_a_process_isolated_task_must_live_in_an_importable_module() -> None:
    from jobbers.registry import register_task

    def body() -> None: ...

    body.__module__ = "__main__"
    with pytest.raises(ValueError, match="importable module"):
        register_task(body, name="unit.isolated_in_main", isolate="process")
