"""A queue's global concurrency limit, its rate limit and pause, across processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobbers.models import QueueConfig, Status
from jobbers.store.base import Store

from .conftest import Spawn
from .support import events, max_overlap, new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio


async def test_queue_concurrency_limit_holds_across_two_workers(
    store: Store, spawn: Spawn, log: Path
) -> None:
    await store.set_queue(QueueConfig("limited", concurrency=3))
    # 2 x 2 slots: without the global limit 4 would run at once, and both workers must take part.
    workers = [spawn(queues="limited", concurrency=2), spawn(queues="limited", concurrency=2)]
    for worker in workers:
        await worker.registered(store)
    ids = await submit(
        store,
        [new_task("wt.sleep_async", queue="limited", seconds=0.5, log=str(log)) for _ in range(12)],
    )
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 15)
    runs = [(r.result["start"], r.result["end"]) for r in records.values()]
    assert max_overlap(runs) == 3
    assert len({r.worker for r in records.values()}) == 2
    makespan = max(end for _, end in runs) - min(start for start, _ in runs)
    print(f"queue limit 3 over 2 workers x 2 slots: 12 x 0.5 s in {makespan:.2f} s")


@pytest.mark.slow
async def test_rate_limit_holds_over_five_seconds(store: Store, spawn: Spawn, log: Path) -> None:
    await store.set_queue(QueueConfig("rated", rate_limit=10, rate_period=1.0))
    workers = [spawn(queues="rated", concurrency=10), spawn(queues="rated", concurrency=10)]
    for worker in workers:
        await worker.registered(store)
    ids = await submit(store, [new_task("wt.mark", queue="rated", log=str(log)) for _ in range(70)])

    async def fifty_started() -> bool:
        return len(events(log, "ran")) >= 50

    await wait_for(fifty_started, 10, "50 rate-limited tasks to run")
    records = await store.get(ids)
    starts = sorted(r.attempts[0].started_at for r in records.values() if r.attempts)
    busiest = max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)
    assert busiest <= 10
    first = starts[0]
    in_five = sum(1 for s in starts if s < first + 5.0)
    print(f"rate 10/s: busiest 1 s window {busiest} starts, {in_five} starts in the first 5 s")
    assert 40 <= in_five <= 50


async def test_paused_queue_starts_nothing_until_resumed(
    store: Store, spawn: Spawn, log: Path
) -> None:
    await store.set_queue(QueueConfig("held", paused=True))
    worker = spawn(queues="held,default")
    await worker.registered(store)
    held = await submit(store, [new_task("wt.mark", queue="held", log=str(log)) for _ in range(5)])
    # Markers on the open queue prove the worker kept claiming while the other queue was paused.
    for _ in range(3):
        markers = await submit(store, [new_task("wt.mark", log=str(log))])
        await wait_statuses(store, markers, {Status.COMPLETED}, 5)
    statuses = await store.statuses(held)
    assert set(statuses.values()) == {Status.SUBMITTED}

    resumed = time.monotonic()
    await store.set_queue(QueueConfig("held", paused=False))
    await wait_statuses(store, held, {Status.COMPLETED}, 5)
    print(f"paused queue: all 5 done {time.monotonic() - resumed:.2f} s after resume")
