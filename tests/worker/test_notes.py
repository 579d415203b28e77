"""Progress and log lines from inside tasks reach the store with their attempt, capped, masked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from jobbers.models import Status
from jobbers.registry import TaskContext, register_task
from jobbers.store.base import Store
from jobbers.worker import Worker, WorkerSettings
from jobbers.worker.notes import MAX_LINES

from .support import new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

user_log = logging.getLogger("notes.user")
user_log.setLevel(logging.INFO)


async def chatty(ctx: TaskContext, steps: int, password: str) -> int:
    for i in range(1, steps + 1):
        ctx.progress(i / steps, f"step {i}")
        user_log.info("step %d using %s", i, password)
    try:
        raise ValueError("handled")
    except ValueError:
        user_log.exception("it broke, carrying on")
    return steps


def flood(ctx: TaskContext, lines: int) -> None:
    """Sync: logs from the task's own thread."""
    for i in range(lines):
        user_log.warning("line %d", i)


async def halfway(ctx: TaskContext) -> None:
    ctx.progress(0.5, "waiting")
    user_log.info("half done")
    await asyncio.sleep(60)


for fn in (chatty, flood, halfway):
    register_task(fn, name=f"notes.{fn.__name__}")


async def _worker(store: Store) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker(store, WorkerSettings(concurrency=2, lease=2.0, shutdown_grace=0.0))
    return worker, asyncio.create_task(worker.run())


async def _stop(worker: Worker, running: asyncio.Task[None]) -> None:
    worker.request_stop()
    worker.request_stop()
    await asyncio.wait_for(running, 10)


async def test_lines_and_progress_are_stored_with_the_attempt_and_masked(store: Store) -> None:
    worker, running = await _worker(store)
    try:
        ids = await submit(store, [new_task("notes.chatty", steps=3, password="hunter22")])
        await wait_statuses(store, ids, {Status.COMPLETED}, 10)

        async def shipped() -> bool:
            notes = await store.notes(ids[0])
            return bool(notes) and len(notes[0].lines) == 4

        await wait_for(shipped, 5, "the log lines to be stored")
    finally:
        await _stop(worker, running)
    [note] = await store.notes(ids[0])
    assert (note.attempt, note.progress, note.message) == (1, 1.0, "step 3")
    messages = [line.message for line in note.lines]
    assert messages[:3] == [f"step {i} using ***" for i in (1, 2, 3)]
    assert messages[3].startswith("it broke, carrying on\nTraceback")
    assert "ValueError: handled" in messages[3]
    assert [line.level for line in note.lines] == ["INFO"] * 3 + ["ERROR"]
    assert all("hunter22" not in m for m in messages)


async def test_a_flood_is_capped_per_attempt(store: Store) -> None:
    worker, running = await _worker(store)
    try:
        ids = await submit(store, [new_task("notes.flood", lines=5 * MAX_LINES)])
        await wait_statuses(store, ids, {Status.COMPLETED}, 10)

        async def capped() -> bool:
            notes = await store.notes(ids[0])
            return bool(notes) and "capped" in notes[0].lines[-1].message

        await wait_for(capped, 5, "the capped log to be stored")
    finally:
        await _stop(worker, running)
    [note] = await store.notes(ids[0])
    assert len(note.lines) == MAX_LINES
    assert note.lines[0].message == "line 0"
    assert note.progress is None


async def test_progress_shows_while_the_task_runs(store: Store) -> None:
    worker, running = await _worker(store)
    try:
        ids = await submit(store, [new_task("notes.halfway")])

        async def visible() -> bool:
            notes: list[Any] = await store.notes(ids[0])
            return bool(notes) and notes[0].progress == 0.5 and len(notes[0].lines) == 1

        await wait_for(visible, 5, "progress of the running task")
        assert (await store.statuses(ids))[ids[0]] == Status.STARTED
    finally:
        await _stop(worker, running)
