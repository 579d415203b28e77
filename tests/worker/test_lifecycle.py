"""A killed worker's tasks are finished by another, and SIGTERM loses nothing."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn, one_task
from .support import events, new_task, policy_of, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio


async def started_count(log: Path, n: int, timeout: float) -> None:
    async def all_started() -> bool:
        return len(events(log, "start")) >= n

    await wait_for(all_started, timeout, f"{n} task(s) to start")


@pytest.mark.slow
async def test_kill_9_then_a_second_worker_finishes_everything(
    store: Store, spawn: Spawn, log: Path
) -> None:
    first = spawn(concurrency=20, lease=1.0)
    await first.registered(store)
    # The default policy: no error retries. A lost lease is not an error: it does not spend them.
    policy = policy_of("wt.sleep_async", max_retries=0)
    tasks = [
        new_task("wt.sleep_async", policy=policy, seconds=2.0, log=str(log)) for _ in range(20)
    ]
    ids = await submit(store, tasks)
    await started_count(log, 20, 10)
    first.signal(signal.SIGKILL)
    killed_at = time.time()
    first.wait(5)

    second = spawn(concurrency=20, lease=1.0)
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 15)
    ends = collections.Counter(e["id"] for e in events(log, "end"))
    assert ends == dict.fromkeys(ids, 1)  # every task completed exactly once
    for record in records.values():
        assert (record.retries, record.lost) == (0, 1)
        lost, done = record.attempts
        assert lost.outcome == "lease_lost"
        assert lost.error is not None
        assert lost.error.type == "LeaseLost"
        assert lost.worker != done.worker
        assert f":{first.pid}:" in lost.worker
        assert f":{second.pid}:" in done.worker
        assert done.outcome == "completed"
    reaped = max(r.attempts[0].finished_at or 0 for r in records.values()) - killed_at
    finished = max(r.finished_at or 0 for r in records.values()) - killed_at
    print(
        f"kill -9: leases reaped {reaped:.2f} s after the kill, all 20 done after {finished:.2f} s"
    )


@pytest.mark.slow
async def test_a_task_that_kills_its_worker_every_time_ends_dead_after_max_lost(
    store: Store, spawn: Spawn, log: Path
) -> None:
    policy = policy_of("wt.kill_worker", max_lost=2)
    [task_id] = await submit(store, [new_task("wt.kill_worker", policy=policy, log=str(log))])
    for attempt in range(1, 4):
        worker = spawn(concurrency=1, lease=0.5)
        assert worker.wait(15) == -signal.SIGKILL, worker.output()
        assert len(events(log, "start")) == attempt
    spawn(concurrency=1, lease=0.5)  # its maintenance reaps the third lost lease
    [record] = (await wait_statuses(store, [task_id], {Status.DEAD}, 10)).values()
    assert [a.outcome for a in record.attempts] == ["lease_lost"] * 3
    assert (record.retries, record.lost) == (0, 3)
    failed = [e for e in await store.events(None, 1000) if e.status == Status.FAILED]
    assert failed
    assert failed[0].reason is not None
    assert "lost 3 attempt(s); max_lost is 2" in failed[0].reason


async def test_sigterm_hands_back_running_tasks_and_a_restart_completes_them(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker = spawn(concurrency=4, grace=0.3)
    await worker.registered(store)
    tasks = [new_task("wt.sleep_async", seconds=3.0, log=str(log)) for _ in range(3)]
    tasks.append(new_task("wt.sleep_sync", seconds=3.0, log=str(log)))
    tasks += [new_task("wt.sleep_async", seconds=0.2, log=str(log)) for _ in range(4)]
    ids = await submit(store, tasks)
    await started_count(log, 4, 5)
    worker.signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert worker.wait(20) == 0  # a deadline, not the grace: the machine may be busy
    print(f"SIGTERM with a 0.3 s grace: exited after {time.monotonic() - signalled:.2f} s")
    statuses = await store.statuses(ids)
    assert set(statuses.values()) == {Status.SUBMITTED}, statuses  # nothing failed or lost
    assert not await store.workers()  # it unregistered
    for record in (await store.get(ids[:4])).values():
        assert [a.outcome for a in record.attempts] == ["handed_back"]
        assert record.retries == 0  # a hand-back is not a failure

    spawn(concurrency=4)
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 15)
    for task_id in ids[:4]:
        assert [a.outcome for a in records[task_id].attempts] == ["handed_back", "completed"]
    for task_id in ids[4:]:
        assert [a.outcome for a in records[task_id].attempts] == ["completed"]


async def test_sigterm_lets_running_tasks_finish_within_the_grace(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker = spawn(concurrency=2, grace=5.0)
    await worker.registered(store)
    running = [new_task("wt.sleep_async", seconds=1.0, log=str(log)) for _ in range(2)]
    queued = [new_task("wt.sleep_async", seconds=0.5, log=str(log)) for _ in range(2)]
    await submit(store, running)
    await started_count(log, 2, 5)
    await submit(store, queued)
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0  # a deadline, not the grace: the machine may be busy
    records = await store.get([t.id for t in running + queued])
    for new in running:
        assert records[new.id].status == Status.COMPLETED
    for new in queued:  # claimed by nobody: the worker stopped claiming at once
        assert records[new.id].status == Status.SUBMITTED
        assert records[new.id].attempts == ()


async def test_cancel_still_works_during_the_grace(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=2, grace=30.0)
    await worker.registered(store)
    ids = await submit(store, [new_task("wt.sleep_async", seconds=30.0, log=str(log))])
    await started_count(log, 1, 5)
    worker.signal(signal.SIGTERM)
    requested = time.monotonic()
    await store.cancel(ids)
    assert worker.wait(20) == 0  # nothing left once the cancelled task stopped
    print(f"cancelled during the grace: worker exited {time.monotonic() - requested:.2f} s later")
    assert [e["id"] for e in events(log, "cancelled")] == ids
    assert (await store.statuses(ids))[ids[0]] == Status.CANCELLED


async def test_second_sigterm_skips_the_grace(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=2, grace=30.0)
    await worker.registered(store)
    ids = await submit(store, [new_task("wt.sleep_async", seconds=30.0, log=str(log))])
    await started_count(log, 1, 5)
    worker.signal(signal.SIGTERM)

    async def in_grace() -> bool:  # two signals sent at once may merge into one
        return "stopping; waiting up to" in worker.output()

    await wait_for(in_grace, 5, "the worker to begin its grace period")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0  # a deadline, not the grace: the machine may be busy
    [record] = (await store.get(ids)).values()
    assert record.status == Status.SUBMITTED
    assert [a.outcome for a in record.attempts] == ["handed_back"]


async def test_start_hooks_run_as_the_worker_starts(
    store: Store, spawn: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "started"
    monkeypatch.setenv("JOBBERS_TEST_START_LOG", str(started))
    worker = spawn()

    async def hook_ran() -> bool:
        return started.exists() and started.read_text().split() == [str(worker.pid)]

    await wait_for(hook_ran, 10, "the worker's start hook")  # no task submitted: it ran at start


async def test_a_failing_start_hook_is_logged_and_the_worker_goes_on(
    store: Store, spawn: Spawn, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBBERS_TEST_START_FAIL", "1")
    worker, ids = await one_task(store, spawn, log, "wt.sleep_async", seconds=0.0)
    await wait_statuses(store, ids, {Status.COMPLETED}, 10)
    assert "start hook note_worker_start failed" in worker.output()
    assert "start hook failed on purpose" in worker.output()


def test_a_start_hook_must_be_async() -> None:
    from jobbers import on_worker_start

    def not_async() -> None:
        pass

    with pytest.raises(TypeError, match="async function"):
        on_worker_start(not_async)  # type: ignore[arg-type]
