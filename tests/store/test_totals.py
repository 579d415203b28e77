"""Monotonic totals, on every backend: they agree with what the store recorded, move in the same
step as the change they count, and never fall when tasks are pruned or deleted."""

from __future__ import annotations

from collections import Counter

import pytest

from jobbers import effects
from jobbers.ids import uuid7
from jobbers.models import ErrorInfo, NewTask, Outcome, RetryPolicy, Status, TaskFilter
from jobbers.store.base import Report, Store

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0
LEASE = 10.0
W = "host:1:w"


def new(name: str, policy: RetryPolicy | None = None, queue: str = "default") -> NewTask:
    return NewTask(
        id=uuid7(), name=name, kwargs={}, queue=queue, priority=0, policy=policy or RetryPolicy()
    )


def failed() -> Outcome:
    return Outcome("failed", error=ErrorInfo("ValueError", "boom", "Traceback ..."))


async def totals(store: Store) -> dict[tuple[str, str, str], int]:
    return (await store.counts(since=T0)).totals


async def run_all(store: Store, outcome: Outcome, at: float) -> int:
    """Claim everything ready at ``at`` and report ``outcome`` for each: how many ran."""
    claimed = await store.claim(W, ["default", "other"], 100, LEASE, now=at)
    reports = [Report(t.id, t.attempt, outcome) for t in claimed]
    if reports:
        await store.finish(W, reports, now=at)
    return len(claimed)


async def expected(store: Store) -> Counter[tuple[str, str, str]]:
    """The totals as the store's own records tell them: its change feed, the attempts and the
    retries each task spent (none was resubmitted, so none was reset)."""
    records = {t.id: t for t in (await store.query(TaskFilter(), 1000)).tasks}
    want: Counter[tuple[str, str, str]] = Counter()
    key = {
        Status.STARTED: effects.Total.STARTED.value,
        Status.COMPLETED: "finished:completed",
        Status.FAILED: "finished:failed",
        Status.CANCELLED: "finished:cancelled",
        Status.DEAD: effects.Total.DEAD_LETTERED.value,
    }
    for t in records.values():
        want[(t.queue, t.name, effects.SUBMITTED)] += 1
        if t.retries:
            want[(t.queue, t.name, effects.Total.RETRIED.value)] += t.retries
        for a in t.attempts:
            if a.outcome == "lease_lost":
                want[(t.queue, t.name, effects.Total.LEASE_LOST.value)] += 1
    for event in await store.events(None, 100_000):
        t = records[event.task_id]
        if event.status in key:
            want[(t.queue, t.name, key[event.status])] += 1
    return want


async def test_totals_agree_with_the_records(store: Store) -> None:
    retrying = RetryPolicy(max_retries=1, base_delay=1.0, max_delay=1.0, backoff="constant")
    tasks = [
        *(new("t.ok") for _ in range(3)),
        new("t.ok", queue="other"),
        new("t.flaky", retrying),
        new("t.bad"),
        new("t.cut"),
        new("t.lost", RetryPolicy(max_lost=1)),
    ]
    await store.submit(tasks, now=T0)
    await store.cancel([tasks[-3].id, tasks[-2].id], now=T0)  # before they run
    ok = await store.claim(W, ["default", "other"], 100, LEASE, now=T0 + 1)
    by_name = {t.id: t for t in ok}
    reports = []
    for t in ok:
        if t.name == "t.ok":
            reports.append(Report(t.id, t.attempt, Outcome("completed", result=1)))
        elif t.name == "t.flaky":
            reports.append(Report(t.id, t.attempt, failed()))
    await store.finish(W, reports, now=T0 + 2)
    assert {t.name for t in by_name.values()} == {"t.ok", "t.flaky", "t.lost"}
    await store.reap(now=T0 + 1 + LEASE + 1)  # t.lost: its lease lost, it is requeued
    # the retry and the requeue both run again and fail for good
    assert await run_all(store, failed(), T0 + 100) == 2
    await store.reap(now=T0 + 200)
    got = await totals(store)
    assert got == dict(await expected(store))
    assert got[("default", "t.ok", "finished:completed")] == 3
    assert got[("other", "t.ok", "finished:completed")] == 1
    assert got[("default", "t.flaky", effects.Total.RETRIED.value)] == 1
    assert got[("default", "t.flaky", effects.Total.STARTED.value)] == 2
    assert got[("default", "t.flaky", "finished:failed")] == 1
    assert got[("default", "t.flaky", effects.Total.DEAD_LETTERED.value)] == 1
    assert got[("default", "t.lost", effects.Total.LEASE_LOST.value)] == 1
    assert got[("default", "t.bad", "finished:cancelled")] == 1


async def test_totals_never_fall_when_tasks_are_pruned_or_deleted(store: Store) -> None:
    tasks = [new("t.ok") for _ in range(5)]
    await store.submit(tasks, now=T0)
    assert await run_all(store, Outcome("completed", result=1), T0 + 1) == 5
    before = await totals(store)
    assert before[("default", "t.ok", "finished:completed")] == 5
    assert await store.prune(before=T0 + 10) == 5
    after = await store.counts(since=T0)
    assert after.tasks == {}
    assert after.totals == before
    await store.submit([new("t.ok")], now=T0 + 20)
    assert await run_all(store, Outcome("completed", result=1), T0 + 21) == 1
    assert await store.delete([t.id for t in tasks], [Status.COMPLETED]) == []
    got = await totals(store)
    assert got[("default", "t.ok", "finished:completed")] == 6
    assert got[("default", "t.ok", effects.SUBMITTED)] == 6


async def test_a_repeated_submission_counts_once_and_a_resubmit_counts_again(
    store: Store,
) -> None:
    task = new("t.once")
    await store.submit([task], now=T0)
    await store.submit([task], now=T0 + 1)  # the same id and payload: an idempotent repeat
    assert await run_all(store, failed(), T0 + 2) == 1
    assert await store.resubmit([task.id], now=T0 + 3) == [task.id]
    assert await run_all(store, Outcome("completed", result=1), T0 + 4) == 1
    got = await totals(store)
    group = ("default", "t.once")
    assert got[(*group, effects.SUBMITTED)] == 1
    assert got[(*group, effects.Total.RESUBMITTED.value)] == 1
    assert got[(*group, effects.Total.STARTED.value)] == 2
    assert got[(*group, "finished:failed")] == 1
    assert got[(*group, "finished:completed")] == 1


async def test_wait_and_run_timings_per_name_never_fall(store: Store) -> None:
    """Every start adds its wait and every attempt's end its run time, the retried attempt's
    too; pruning leaves them."""
    retrying = RetryPolicy(max_retries=1, base_delay=1.0, max_delay=1.0, backoff="constant")
    quick, slow = new("t.quick"), new("t.slow", retrying)
    await store.submit([quick, slow], now=T0)
    claimed = await store.claim(W, ["default"], 10, LEASE, now=T0 + 2)
    assert len(claimed) == 2
    mine = {t.id: t for t in claimed}
    await store.finish(
        W,
        [Report(quick.id, mine[quick.id].attempt, Outcome("completed", result=1))],
        now=T0 + 2.5,
    )
    await store.finish(W, [Report(slow.id, mine[slow.id].attempt, failed())], now=T0 + 9)
    assert await store.promote_due(now=T0 + 12) == 1  # due at T0 + 10, ready from T0 + 12
    assert await run_all(store, Outcome("completed", result=1), T0 + 40) == 1
    timings = (await store.counts(since=T0)).timings
    wait_quick = timings[("wait", "default", "t.quick")]
    assert wait_quick.count == 1
    assert wait_quick.total == pytest.approx(2.0)
    wait_slow = timings[("wait", "default", "t.slow")]
    # The retry waited from its promotion (when it became ready) to its start.
    assert wait_slow.count == 2
    assert wait_slow.total == pytest.approx(2.0 + 28.0)
    run_slow = timings[("run", "default", "t.slow")]
    assert run_slow.count == 2
    assert run_slow.total == pytest.approx(7.0 + 0.0)
    run_quick = timings[("run", "default", "t.quick")]
    assert run_quick.count == 1
    assert run_quick.total == pytest.approx(0.5)
    assert run_quick.buckets[-1] == 1  # within the last bound: cumulative
    assert await store.prune(before=T0 + 100) == 2
    assert (await store.counts(since=T0)).timings == timings


async def test_a_delayed_tasks_wait_starts_when_it_becomes_ready(store: Store) -> None:
    task = NewTask(id=uuid7(), name="t.later", kwargs={}, due_at=T0 + 100)
    await store.submit([task], now=T0)
    assert await store.promote_due(now=T0 + 101) == 1
    assert await run_all(store, Outcome("completed", result=1), T0 + 103) == 1
    wait = (await store.counts(since=T0)).timings[("wait", "default", "t.later")]
    assert wait.count == 1
    assert wait.total == pytest.approx(2.0)
