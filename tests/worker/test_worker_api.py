"""The Worker and Maintenance as a library (what ``jobbers dev`` embeds), in this process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from jobbers.models import NewTask, Outcome, Status, TaskRecord
from jobbers.store import open_store
from jobbers.store.base import Report, Store, StoreUnavailable
from jobbers.worker import Worker, WorkerSettings
from jobbers.worker.maintenance import Maintenance

from .support import events, new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0


def settings(**changes: object) -> WorkerSettings:
    base: dict[str, object] = {"concurrency": 2, "lease": 1.0, "shutdown_grace": 30.0}
    return WorkerSettings(**{**base, **changes})  # type: ignore[arg-type]


async def test_second_stop_request_skips_the_grace(store: Store, log: Path) -> None:
    worker = Worker(store, settings())
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.sleep_async", seconds=30.0, log=str(log))])
    await wait_statuses(store, ids, {Status.STARTED}, 5)
    worker.request_stop()
    await asyncio.sleep(0)  # let it begin the grace period
    assert not running.done()
    worker.request_stop()
    await asyncio.wait_for(running, 2)
    [record] = (await store.get(ids)).values()
    assert record.status == Status.SUBMITTED
    assert [a.outcome for a in record.attempts] == ["handed_back"]
    assert not await store.workers()
    assert "running=0 handed_back=1" in repr(worker)


async def test_cancelling_run_hands_back_what_runs(store: Store, log: Path) -> None:
    worker = Worker(store, settings())
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.sleep_async", seconds=30.0, log=str(log))])
    await wait_statuses(store, ids, {Status.STARTED}, 5)

    async def body_running() -> bool:  # claimed is not yet running: its body logs "start"
        return bool(events(log, "start"))

    await wait_for(body_running, 5, "the task's body to start")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await store.statuses(ids))[ids[0]] == Status.SUBMITTED
    assert [e["id"] for e in events(log, "cancelled")] == ids


async def test_a_task_raising_cancelled_error_ends_cancelled(store: Store, log: Path) -> None:
    """Not handed back (it would loop forever) and the worker carries on."""
    worker = Worker(store, settings())
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.cancel_itself"), new_task("wt.mark", log=str(log))])
    records = await wait_statuses(store, ids, {Status.CANCELLED, Status.COMPLETED}, 5)
    worker.request_stop()
    await running
    assert records[ids[0]].status == Status.CANCELLED
    assert [a.outcome for a in records[ids[0]].attempts] == ["cancelled"]
    assert records[ids[1]].status == Status.COMPLETED


async def test_a_late_report_is_fenced_off(store: Store, log: Path) -> None:
    """A worker that lost its lease cannot overwrite the newer state."""
    worker = Worker(store, settings())
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.sleep_async", seconds=30.0, log=str(log))])
    await wait_statuses(store, ids, {Status.STARTED}, 5)
    stale = await store.finish("someone-else", [Report(ids[0], 1, Outcome("completed", 1))])
    assert stale == [None]
    worker.request_stop()
    worker.request_stop()
    await running
    assert (await store.statuses(ids))[ids[0]] == Status.SUBMITTED


async def test_cancel_racing_claim_never_runs_a_cancelled_task(
    make_store: Callable[[], Store], log: Path
) -> None:
    """The race of a claim and a cancel: whatever wins, a task cancelled while waiting never
    runs, and one cancelled after it started keeps no result."""
    client = make_store()
    worker = Worker(make_store(), settings(concurrency=4))
    running = asyncio.create_task(worker.run())
    ids = []
    for _ in range(300):
        [task_id] = await submit(client, [new_task("wt.mark", log=str(log))])
        await client.cancel([task_id])
        ids.append(task_id)
    records = await wait_statuses(client, ids, {Status.CANCELLED, Status.COMPLETED}, 10)
    worker.request_stop()
    await running
    history: dict[str, list[Status]] = {}
    for event in await client.events(None, 100_000):
        history.setdefault(event.task_id, []).append(event.status)
    ran = {line["id"] for line in events(log, "ran")}
    outcomes = {"waiting": 0, "running": 0, "completed first": 0}
    for task_id in ids:
        if history[task_id] == [Status.SUBMITTED, Status.CANCELLED]:
            outcomes["waiting"] += 1
            assert task_id not in ran
        elif records[task_id].status == Status.CANCELLED:
            outcomes["running"] += 1
            assert history[task_id] == [Status.SUBMITTED, Status.STARTED, Status.CANCELLED]
            assert records[task_id].result is None
        else:
            outcomes["completed first"] += 1
            assert task_id in ran
    print(f"300 submit+cancel races, cancelled while: {outcomes}")


class FlakyStore:
    """Refuses the first ``failures`` finish calls, as a store under trouble would."""

    def __init__(self, inner: Store, failures: int, error: Exception) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return await self.inner.finish(worker_id, reports, now)


@pytest.mark.parametrize(
    ("error", "failures", "outcomes"),
    [
        (RuntimeError("disk I/O error"), 2, ["completed"]),
        (RuntimeError("disk I/O error"), 5, ["lease_lost", "completed"]),
        (StoreUnavailable("store unreachable (injected)"), 8, ["completed"]),
    ],
    ids=["error-retried", "error-dropped", "outage-kept"],
)
async def test_reports_survive_store_errors(
    store: Store,
    store_url: str,
    log: Path,
    error: Exception,
    failures: int,
    outcomes: list[str],
) -> None:
    """Refused reports are retried; past the limit they are dropped, leases lapse, tasks rerun.
    An unreachable store is not the reports' fault: they are kept until it is back."""
    flaky = FlakyStore(open_store(store_url), failures, error)
    worker = Worker(cast(Store, flaky), settings(lease=0.5, maintenance_interval=0.1))
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.sleep_async", seconds=0.0, log=str(log))])
    [record] = (await wait_statuses(store, ids, {Status.COMPLETED}, 30)).values()
    worker.request_stop()
    await running
    await flaky.close()
    assert [a.outcome for a in record.attempts] == outcomes


async def test_a_crashed_helper_stops_the_worker(store: Store, log: Path) -> None:
    worker = Worker(store, settings())

    def broken() -> dict[str, int]:
        raise RuntimeError("bug")

    worker._lease_keeper._leases = broken
    await asyncio.wait_for(worker.run(), 5)
    assert not await store.workers()


async def test_maintenance_in_many_workers_reaps_each_task_once(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    tasks = [NewTask(id=f"t{i}", name="wt.mark", kwargs={}) for i in range(50)]
    await store.submit(tasks, now=T0)
    claimed = await store.claim("gone", ["default"], 50, lease=1.0, now=T0)
    assert len(claimed) == 50
    duties = [Maintenance(make_store(), owner=f"m{i}") for i in range(5)]
    reports = await asyncio.gather(*(d.run_once(now=T0 + 10) for d in duties))
    assert sum(r.reaped for r in reports) == 50
    stalled = [e.task_id for e in await store.events(None, 10_000) if e.status == Status.STALLED]
    assert sorted(stalled) == sorted(t.id for t in tasks)


async def test_maintenance_prunes_after_the_retention(store: Store, log: Path) -> None:
    await store.submit([NewTask(id="old", name="wt.mark", kwargs={})], now=T0)
    await store.claim("w", ["default"], 1, lease=10.0, now=T0)
    await store.finish("w", [Report("old", 1, Outcome("completed", None))], now=T0 + 1)
    duty = Maintenance(store, retention=100.0, prune_interval=60.0)
    assert (await duty.run_once(now=T0 + 50)).pruned == 0
    assert (await duty.run_once(now=T0 + 80)).pruned == 0  # not yet time to prune again
    assert (await duty.run_once(now=T0 + 200)).pruned == 1
    assert await store.get(["old"]) == {}


async def test_worker_registers_its_tasks(store: Store) -> None:
    worker = Worker(store, settings(queues=("default", "other")))
    running = asyncio.create_task(worker.run())

    async def registered() -> bool:
        return [w.id for w in await store.workers()] == [worker.id]

    await wait_for(registered, 5, "the worker to register")
    [info] = await store.workers()
    assert info.queues == ("default", "other")
    definitions = await store.task_definitions()
    assert definitions["wt.fail"].policy.max_retries == 0
    assert definitions["wt.stop_beating"].policy.max_heartbeat_interval == 0.5
    worker.request_stop()
    await running


@pytest.mark.parametrize(
    "changes",
    [{"queues": ()}, {"concurrency": 0}, {"lease": 0.0}, {"shutdown_grace": -1.0}],
)
def test_settings_reject_nonsense(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        settings(**changes)


async def test_a_store_that_pushes_cancellations_stops_a_task_before_any_renewal(
    store: Store, store_url: str, log: Path
) -> None:
    """Renewals every 30 s: only the store's cancel announcement can stop the task in time."""
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite cannot push: lease renewal finds cancellations there")
    worker = Worker(store, settings(lease=90.0, renew_cap=30.0))
    running = asyncio.create_task(worker.run())
    ids = await submit(store, [new_task("wt.sleep_async", seconds=60.0, log=str(log))])
    await wait_statuses(store, ids, {Status.STARTED}, 5)

    async def renewed_once() -> bool:
        return bool(events(log, "start"))

    await wait_for(renewed_once, 5, "the task to start")
    await store.cancel(ids)

    async def stopped() -> bool:
        return bool(events(log, "cancelled"))

    await wait_for(stopped, 2.0, "the running task to get CancelledError")
    worker.request_stop()
    await asyncio.wait_for(running, 5)
