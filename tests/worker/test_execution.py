"""Slots, sync beside async, and exactly-once with two worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn
from .support import events, max_overlap, new_task, submit, wait_statuses

pytestmark = pytest.mark.anyio


async def test_sync_task_does_not_block_async_tasks(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=4)
    await worker.registered(store)
    [sync_id] = await submit(store, [new_task("wt.sleep_sync", seconds=2.0, log=str(log))])
    await wait_statuses(store, [sync_id], {Status.STARTED}, timeout=5)
    async_ids = await submit(
        store, [new_task("wt.sleep_async", seconds=0.1, log=str(log)) for _ in range(3)]
    )
    records = await wait_statuses(store, [sync_id, *async_ids], {Status.COMPLETED}, timeout=10)
    sync_run = records[sync_id].result
    for task_id in async_ids:
        run = records[task_id].result
        # Each async task started and ended while the sync one was still sleeping.
        assert sync_run["start"] < run["start"] < run["end"] < sync_run["end"]
    last_async_end = max(records[t].result["end"] for t in async_ids)
    print(f"async tasks done {sync_run['end'] - last_async_end:.2f} s before the sync one")


async def test_concurrency_caps_running_tasks(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=4)
    await worker.registered(store)
    ids = await submit(
        store, [new_task("wt.sleep_async", seconds=1.0, log=str(log)) for _ in range(8)]
    )
    records = await wait_statuses(store, ids, {Status.COMPLETED}, timeout=10)
    runs = [(r.result["start"], r.result["end"]) for r in records.values()]
    assert max_overlap(runs) == 4
    makespan = max(end for _, end in runs) - min(start for start, _ in runs)
    print(f"8 x 1 s tasks on 4 slots: makespan {makespan:.2f} s")
    assert 2.0 <= makespan < 2.6


@pytest.mark.slow
async def test_two_workers_run_each_task_exactly_once(
    store: Store, spawn: Spawn, log: Path
) -> None:
    workers = [spawn(concurrency=20), spawn(concurrency=20)]
    for worker in workers:
        await worker.registered(store)
    started = time.monotonic()
    # 20 ms each keeps one worker busy long enough that both must take a share.
    tasks = [new_task("wt.mark", log=str(log), seconds=0.02) for _ in range(1000)]
    ids = await submit(store, tasks)
    records = await wait_statuses(store, ids, {Status.COMPLETED}, timeout=60)
    elapsed = time.monotonic() - started
    ran = [line["id"] for line in events(log, "ran")]
    assert sorted(ran) == sorted(ids)
    by_worker: dict[str | None, int] = {}
    for record in records.values():
        assert [a.outcome for a in record.attempts] == ["completed"]
        by_worker[record.worker] = by_worker.get(record.worker, 0) + 1
    assert len(by_worker) == 2, by_worker
    print(f"1,000 tasks on 2 workers in {elapsed:.2f} s; split {sorted(by_worker.values())}")


async def test_task_errors_are_recorded(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn()
    await worker.registered(store)
    failing = new_task("wt.fail", log=str(log), error="KeyError")
    ids = await submit(
        store,
        [
            failing,
            new_task("wt.unserialisable"),
            new_task("wt.mark", log=str(log)),
        ],
    )
    [unknown_id] = await submit(store, [replace(new_task("wt.mark"), name="nope")])
    records = await wait_statuses(store, ids, {Status.COMPLETED, Status.DEAD}, 10)
    error = records[failing.id].error
    assert error is not None
    assert error.type == "KeyError"
    assert "attempt 1 failed on purpose" in error.message
    assert "Traceback" in error.traceback
    bad = records[ids[1]].error
    assert bad is not None
    assert "not JSON-serialisable" in bad.message
    assert records[ids[2]].status == Status.COMPLETED
    assert records[ids[2]].result == ids[2]
    # A task this worker has no code for is not its to fail: it waits for a worker that has it.
    [waiting] = (await store.get([unknown_id])).values()
    assert waiting.status is Status.SUBMITTED
    assert waiting.attempts == ()


async def test_busy_sync_task_keeps_its_lease(store: Store, spawn: Spawn, log: Path) -> None:
    """CPU-bound sync code for 3x the lease is renewed all along, never reaped (no redelivery)."""
    worker = spawn(concurrency=2, lease=1.0)
    await worker.registered(store)
    ids = await submit(store, [new_task("wt.busy", seconds=3.0, log=str(log)) for _ in range(2)])
    records = await wait_statuses(store, ids, {Status.COMPLETED, Status.DEAD}, 10)
    for record in records.values():
        assert record.status == Status.COMPLETED
        assert [a.outcome for a in record.attempts] == ["completed"]


def test_entry_point_rejects_bad_arguments(tmp_path: Path) -> None:
    command = [
        *[sys.executable, "-m", "jobbers", "worker", "--tasks", "jobbers.examples"],
        *["--store", f"sqlite:///{tmp_path}/x.db"],
    ]
    for args, message in (
        (["--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["--store", "mongodb://x"], "unsupported store URL"),
        (["--tasks", "no_such_module_here"], "No module named"),
    ):
        done = subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode != 0
        assert message in done.stderr
        assert "Traceback" not in done.stderr
