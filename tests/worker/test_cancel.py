"""Issue 3: cancelling a submitted, scheduled, running async and running sync task."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn
from .support import events, new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio


async def test_cancel_submitted_and_scheduled_tasks_never_start(
    store: Store, spawn: Spawn, log: Path
) -> None:
    queued = new_task("wt.mark", queue="nobody", log=str(log))
    later = new_task("wt.mark", due_at=time.time() + 0.3, log=str(log))
    await submit(store, [queued, later])
    assert (await store.statuses([later.id]))[later.id] == Status.SCHEDULED
    result = await store.cancel([queued.id, later.id])
    assert result.cancelled == [queued.id, later.id]

    # A worker on both queues runs a marker due just after the cancelled one: once the marker
    # has run, the cancelled task would have run too.
    worker = spawn(queues="default,nobody")
    marker = new_task("wt.mark", due_at=time.time() + 0.4, log=str(log))
    await submit(store, [marker])
    await worker.registered(store)
    await wait_statuses(store, [marker.id], {Status.COMPLETED}, 5)
    records = await store.get([queued.id, later.id])
    for record in records.values():
        assert record.status == Status.CANCELLED
        assert record.attempts == ()
    assert [e["id"] for e in events(log, "ran")] == [marker.id]


async def test_cancel_running_async_task_within_a_second(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker = spawn(concurrency=1, lease=30.0)  # the default lease: renewals still come fast
    await worker.registered(store)
    new = new_task("wt.sleep_async", seconds=30.0, log=str(log))
    await submit(store, [new])

    async def started() -> bool:
        return bool(events(log, "start"))

    await wait_for(started, 5, "the task to start")
    requested = time.time()
    assert (await store.cancel([new.id])).cancelled == [new.id]

    async def got_cancelled_error() -> bool:
        return bool(events(log, "cancelled"))

    await wait_for(got_cancelled_error, 1.0, "CancelledError inside the task")
    [cancelled] = events(log, "cancelled")
    print(f"async task got CancelledError {cancelled['at'] - requested:.2f} s after the request")
    record = (await store.get([new.id]))[new.id]
    assert record.status == Status.CANCELLED
    assert [a.outcome for a in record.attempts] == ["cancelled"]
    # The slot is free again: the next task runs at once.
    follow = new_task("wt.mark", log=str(log))
    await submit(store, [follow])
    await wait_statuses(store, [follow.id], {Status.COMPLETED}, 2)


async def test_cancel_running_sync_task_abandons_it(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=1)
    await worker.registered(store)
    new = new_task("wt.sleep_sync", seconds=2.0, log=str(log))
    await submit(store, [new])

    async def started() -> bool:
        return bool(events(log, "start"))

    await wait_for(started, 5, "the task to start")
    requested = time.monotonic()
    assert (await store.cancel([new.id])).cancelled == [new.id]
    # The worker abandons the thread and frees the slot: the next task runs while the
    # abandoned one still sleeps.
    follow = new_task("wt.mark", log=str(log))
    await submit(store, [follow])
    await wait_statuses(store, [follow.id], {Status.COMPLETED}, 1.0)
    freed = time.monotonic() - requested
    print(f"sync task abandoned; its slot ran the next task {freed:.2f} s after the request")
    assert not events(log, "end")

    async def thread_ended() -> bool:
        return bool(events(log, "end"))

    await wait_for(thread_ended, 5, "the abandoned thread to finish")
    [end] = events(log, "end")
    assert end["cancel_requested"] is True
    record = (await store.get([new.id]))[new.id]
    assert record.status == Status.CANCELLED
    assert record.result is None
    assert [a.outcome for a in record.attempts] == ["cancelled"]
