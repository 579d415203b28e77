"""Helpers for the worker process tests: submitting, polling with a deadline, reading logs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobbers.ids import uuid7
from jobbers.models import NewTask, RetryPolicy, Status, TaskRecord
from jobbers.registry import get_task
from jobbers.store.base import Store

from . import tasks_for_tests as _tasks  # noqa: F401  (registers the task names used below)


def new_task(
    name: str,
    queue: str = "default",
    policy: RetryPolicy | None = None,
    due_at: float | None = None,
    **kwargs: Any,
) -> NewTask:
    """A submission with the task's declared policy, as the Manager would build it."""
    return NewTask(
        id=uuid7(),
        name=name,
        kwargs=kwargs,
        queue=queue,
        policy=policy or get_task(name).policy,
        due_at=due_at,
    )


def policy_of(name: str, **changes: Any) -> RetryPolicy:
    return replace(get_task(name).policy, **changes)


async def submit(store: Store, tasks: Sequence[NewTask]) -> list[str]:
    submitted = await store.submit(tasks)
    return [s.task.id for s in submitted]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, step: float = 0.02
) -> float:
    """Poll ``condition`` until true; return the seconds it took; fail with ``what`` otherwise."""
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)
    return time.monotonic() - start


async def wait_statuses(
    store: Store, ids: Sequence[str], statuses: Iterable[Status], timeout: float
) -> dict[str, TaskRecord]:
    """Wait until every task is in one of ``statuses``; return their records."""
    wanted = set(statuses)

    async def done() -> bool:
        found = await store.statuses(ids)
        return len(found) == len(ids) and all(s in wanted for s in found.values())

    await wait_for(done, timeout, f"{len(ids)} task(s) to reach {sorted(wanted)}")
    return await store.get(ids)


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def events(path: Path, event: str) -> list[dict[str, Any]]:
    return [line for line in read_log(path) if line["event"] == event]


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end at t closes before a start at t opens)."""
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda e: (e[0], e[1]),
    )
    best = current = 0
    for _, delta in edges:
        current += delta
        best = max(best, current)
    return best


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie awaiting its parent's wait counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
