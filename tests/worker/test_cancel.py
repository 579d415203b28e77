"""Cancelling a submitted, scheduled, running async and running sync task."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn
from .support import events, max_overlap, new_task, submit, wait_for, wait_statuses

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
    new = new_task("wt.sleep_sync", seconds=1.0, log=str(log))
    await submit(store, [new])

    async def started() -> bool:
        return bool(events(log, "start"))

    await wait_for(started, 5, "the task to start")
    assert (await store.cancel([new.id])).cancelled == [new.id]
    # The worker abandons the thread, which keeps the slot until its body returns: the next
    # task starts only after that, so no more bodies run than --concurrency.
    follow = new_task("wt.mark", log=str(log))
    await submit(store, [follow])
    await wait_statuses(store, [follow.id], {Status.COMPLETED}, 5.0)
    [end] = events(log, "end")
    [ran] = events(log, "ran")
    assert ran["at"] >= end["at"], "the next task ran while the abandoned body still ran"
    assert end["cancel_requested"] is True
    assert "abandoned thread still running, slot held" in worker.output()
    record = (await store.get([new.id]))[new.id]
    assert record.status == Status.CANCELLED
    assert record.result is None
    assert [a.outcome for a in record.attempts] == ["cancelled"]


async def test_abandoned_sync_bodies_keep_concurrency_bounded(
    store: Store, spawn: Spawn, log: Path
) -> None:
    """Counted from outside (each body logs its start and end): cancelling every sync task as
    soon as it starts never lets more than --concurrency bodies run at once."""
    worker = spawn(concurrency=20, poll_cap=0.05)
    await worker.registered(store)
    tasks = [new_task("wt.sleep_sync", seconds=1.0, log=str(log)) for _ in range(200)]
    ids = await submit(store, tasks)

    async def all_cancelled() -> bool:
        found = await store.statuses(ids)
        running = [i for i, s in found.items() if s == Status.STARTED]
        if running:
            await store.cancel(running)
        return all(s == Status.CANCELLED for s in found.values())

    await wait_for(all_cancelled, 40, "every task to start and be cancelled", step=0.05)

    async def bodies_done() -> bool:
        return len(events(log, "end")) == 200

    await wait_for(bodies_done, 10, "every abandoned body to return")
    starts = {e["id"]: e["at"] for e in events(log, "start")}
    ends = {e["id"]: e["at"] for e in events(log, "end")}
    assert len(starts) == 200
    overlap = max_overlap([(starts[i], ends[i]) for i in ids])
    abandoned = worker.output().count("abandoned thread still running, slot held")
    print(f"most bodies at once: {overlap}; abandoned threads: {abandoned}")
    assert overlap <= 20
    assert abandoned >= 100, "most bodies were abandoned while still running"
