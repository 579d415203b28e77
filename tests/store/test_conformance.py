"""The store contract, run against every backend: what passes here is what "a store" means."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable

import pytest

from jobbers.ids import uuid7
from jobbers.models import (
    TRANSITIONS,
    Backoff,
    ErrorInfo,
    Event,
    InvalidTransition,
    NewTask,
    Outcome,
    QueueConfig,
    QueueStats,
    RetryPolicy,
    Status,
    TaskDefinition,
    TaskFilter,
    WorkerInfo,
    check_transition,
)
from jobbers.store.base import (
    DURATION_BUCKETS,
    AttemptNotes,
    BadCursor,
    CancelResult,
    DuplicateTaskConflict,
    LogLine,
    Report,
    Store,
)

from ..conftest import StoreFactory

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0
LEASE = 10.0


def new(
    name: str = "t.add",
    queue: str = "default",
    priority: int = 0,
    policy: RetryPolicy | None = None,
    due_at: float | None = None,
    task_id: str | None = None,
    **kwargs: object,
) -> NewTask:
    return NewTask(
        id=task_id or uuid7(),
        name=name,
        kwargs=dict(kwargs),
        queue=queue,
        priority=priority,
        policy=policy or RetryPolicy(),
        due_at=due_at,
    )


def boom(kind: str = "ValueError") -> Outcome:
    return Outcome("failed", error=ErrorInfo(kind, "boom", "Traceback ..."))


async def transitions(store: Store) -> dict[str, list[Status]]:
    seen: dict[str, list[Status]] = {}
    for event in await store.events(None, 100_000):
        seen.setdefault(event.task_id, []).append(event.status)
    return seen


# -- submission ------------------------------------------------------------------------------


async def test_submit_stores_submitted_tasks_and_is_idempotent_by_id(store: Store) -> None:
    task = new(x=1, y=2)
    [first] = await store.submit([task], now=T0)
    assert first.created
    assert first.task.status is Status.SUBMITTED
    assert first.task.kwargs == {"x": 1, "y": 2}
    [again] = await store.submit([task], now=T0 + 1)
    assert not again.created
    assert again.task.submitted_at == first.task.submitted_at
    assert await transitions(store) == {task.id: [Status.SUBMITTED]}


async def test_a_batch_with_a_known_id_stores_only_the_new_tasks_once(store: Store) -> None:
    known = new(task_id="job-1", x=1)
    await store.submit([known], now=T0)
    before, after = new(x=2), new(x=3)
    done = await store.submit([before, new(task_id="job-1", x=1), after], now=T0 + 1)
    assert [(d.task.id, d.created) for d in done] == [
        (before.id, True),
        ("job-1", False),
        (after.id, True),
    ]
    assert done[1].task.submitted_at == T0
    again = await store.submit([after, after], now=T0 + 2)
    assert [(d.task.id, d.created) for d in again] == [(after.id, False), (after.id, False)]
    assert await transitions(store) == {
        "job-1": [Status.SUBMITTED],
        before.id: [Status.SUBMITTED],
        after.id: [Status.SUBMITTED],
    }
    [stats] = await store.queue_stats()
    assert stats.depth == 3
    counts = await store.counts(since=T0 - 60)
    assert sum(n for (_, _, status), n in counts.tasks.items() if status is Status.SUBMITTED) == 3


async def test_a_submitted_record_shares_nothing_with_the_callers_kwargs(store: Store) -> None:
    flat, nested = new(n=1, s="x"), new(n=1, inner={"k": [1, 2]})
    done = await store.submit([flat, nested])
    flat.kwargs["n"] = 2
    nested.kwargs["inner"]["k"].append(3)
    assert [d.task.kwargs for d in done] == [{"n": 1, "s": "x"}, {"n": 1, "inner": {"k": [1, 2]}}]
    stored = await store.get([flat.id, nested.id])
    assert stored[nested.id].kwargs == {"n": 1, "inner": {"k": [1, 2]}}


async def test_conflicting_id_rejects_the_whole_batch(store: Store) -> None:
    original = new(task_id="job-1", x=1)
    await store.submit([original])
    fresh = new(x=9)
    with pytest.raises(DuplicateTaskConflict) as caught:
        await store.submit([fresh, new(task_id="job-1", x=2)])
    assert caught.value.task_ids == ["job-1"]
    assert await store.get([fresh.id]) == {}
    assert (await store.get(["job-1"]))["job-1"].kwargs == {"x": 1}


async def test_delayed_task_waits_until_due(store: Store) -> None:
    task = new(due_at=T0 + 5)
    [sub] = await store.submit([task], now=T0)
    assert sub.task.status is Status.SCHEDULED
    assert await store.claim("w", ["default"], 10, LEASE, now=T0 + 4) == []
    [claimed] = await store.claim("w", ["default"], 10, LEASE, now=T0 + 5)
    assert claimed.id == task.id
    assert (await transitions(store))[task.id] == [
        Status.SCHEDULED,
        Status.SUBMITTED,
        Status.STARTED,
    ]


# -- claim -----------------------------------------------------------------------------------


async def test_claim_takes_up_to_limit_by_priority_then_age(store: Store) -> None:
    low, high, other_queue, low2 = new(), new(priority=5), new(queue="q2"), new()
    await store.submit([low, high, other_queue, low2], now=T0)
    claimed = await store.claim("w1", ["default"], 2, LEASE, now=T0)
    assert [t.id for t in claimed] == [high.id, low.id]
    assert all(t.status is Status.STARTED and t.worker == "w1" for t in claimed)
    assert claimed[0].attempt == 1
    assert claimed[0].lease_expires_at == T0 + LEASE
    rest = await store.claim("w2", ["default", "q2"], 10, LEASE, now=T0)
    assert {t.id for t in rest} == {other_queue.id, low2.id}


async def test_claim_takes_only_the_names_the_worker_can_run_and_leaves_the_rest_in_place(
    store: Store,
) -> None:
    """A worker without a task's code leaves it waiting, first in line, for one that has it."""
    new_first, old_a, new_second, old_b = new("t.new"), new(), new("t.new"), new()
    await store.submit([new_first, old_a, new_second, old_b], now=T0)
    old = await store.claim("old", ["default"], 10, LEASE, now=T0, names={"t.add"})
    assert [t.id for t in old] == [old_a.id, old_b.id]
    assert await store.claim("old", ["default"], 10, LEASE, now=T0, names={"t.add"}) == []
    assert await store.claim("none", ["default"], 10, LEASE, now=T0, names=set()) == []
    fresh = await store.claim("new", ["default"], 10, LEASE, now=T0, names={"t.add", "t.new"})
    assert [t.id for t in fresh] == [new_first.id, new_second.id]
    assert [a.number for t in fresh for a in t.attempts] == [1, 1], "nothing spent waiting"


async def test_concurrent_claims_from_many_connections_never_share_a_task(
    make_store: StoreFactory,
) -> None:
    first = make_store()
    await first.submit([new() for _ in range(300)])
    stores = [first, *(make_store() for _ in range(3))]

    async def drain(store: Store, worker: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim(worker, ["default"], 7, LEASE):
            got.extend(t.id for t in batch)
        return got

    results = await asyncio.gather(*(drain(s, f"w{i}") for i, s in enumerate(stores)))
    everything = list(itertools.chain.from_iterable(results))
    assert len(everything) == 300
    assert len(set(everything)) == 300


async def test_paused_queue_starts_nothing_until_resumed(store: Store) -> None:
    await store.submit([new(queue="q")])
    await store.set_queue(QueueConfig("q", paused=True))
    assert await store.claim("w", ["q"], 5, LEASE) == []
    await store.set_queue(QueueConfig("q", paused=False))
    assert len(await store.claim("w", ["q"], 5, LEASE)) == 1


async def test_queue_concurrency_limit_holds_across_workers(store: Store) -> None:
    await store.submit([new(queue="q") for _ in range(10)], now=T0)
    await store.set_queue(QueueConfig("q", concurrency=3))
    a = await store.claim("a", ["q"], 2, LEASE, now=T0)
    b = await store.claim("b", ["q"], 5, LEASE, now=T0)
    assert (len(a), len(b)) == (2, 1)
    await store.finish("a", [Report(a[0].id, 1, Outcome("completed"))], now=T0)
    assert len(await store.claim("b", ["q"], 5, LEASE, now=T0)) == 1
    [stats] = [s for s in await store.queue_stats() if s.config.name == "q"]
    assert (stats.running, stats.depth, stats.config.concurrency) == (3, 6, 3)


async def test_rate_limit_counts_starts_in_a_sliding_window(store: Store) -> None:
    await store.submit([new(queue="r") for _ in range(10)], now=T0)
    await store.set_queue(QueueConfig("r", rate_limit=3, rate_period=1.0))
    assert len(await store.claim("w", ["r"], 10, LEASE, now=T0)) == 3
    assert await store.claim("w", ["r"], 10, LEASE, now=T0 + 0.5) == []
    assert len(await store.claim("w", ["r"], 10, LEASE, now=T0 + 1.01)) == 3


async def test_rate_periods_longer_than_an_hour_survive_maintenance(store: Store) -> None:
    await store.submit([new(queue="slow") for _ in range(6)], now=T0)
    await store.set_queue(QueueConfig("slow", rate_limit=2, rate_period=7200.0))
    assert len(await store.claim("w", ["slow"], 10, LEASE, now=T0)) == 2
    await store.reap(now=T0 + 5000)
    await store.prune(before=T0 + 5000 - 600)
    assert await store.claim("w", ["slow"], 10, LEASE, now=T0 + 5000) == []
    assert len(await store.claim("w", ["slow"], 10, LEASE, now=T0 + 7201)) == 2


# -- finish, retry, dead letter ----------------------------------------------------------------


async def test_finish_records_result_and_is_fenced_by_owner_and_attempt(store: Store) -> None:
    await store.submit([new()], now=T0)
    [task] = await store.claim("w", ["default"], 1, LEASE, now=T0)
    assert await store.finish("intruder", [Report(task.id, 1, Outcome("completed", 1))]) == [None]
    assert await store.finish("w", [Report(task.id, 2, Outcome("completed", 1))]) == [None]
    [done] = await store.finish("w", [Report(task.id, 1, Outcome("completed", 3))], now=T0 + 1)
    assert done is not None
    assert (done.status, done.result, done.finished_at) == (Status.COMPLETED, 3, T0 + 1)
    assert [(a.number, a.worker, a.outcome) for a in done.attempts] == [(1, "w", "completed")]
    assert await store.finish("w", [Report(task.id, 1, Outcome("completed", 4))]) == [None]


@pytest.mark.parametrize(
    ("backoff", "base", "expected"),
    [
        ("constant", 2.0, [2.0, 2.0, 2.0]),
        ("linear", 1.5, [1.5, 3.0, 4.5]),
        ("linear", 2.0, [2.0, 4.0, 5.0]),
        ("exponential", 1.5, [1.5, 3.0, 5.0]),
    ],
)
async def test_failures_are_retried_after_backoff(
    store: Store, backoff: Backoff, base: float, expected: list[float]
) -> None:
    policy = RetryPolicy(max_retries=3, backoff=backoff, base_delay=base, max_delay=5.0)
    task = new(policy=policy)
    await store.submit([task], now=T0)
    now = T0
    for attempt, delay in enumerate(expected, start=1):
        [claimed] = await store.claim("w", ["default"], 1, LEASE, now=now)
        assert claimed.attempt == attempt
        [after] = await store.finish("w", [Report(task.id, attempt, boom())], now=now)
        assert after is not None
        assert after.status is Status.SCHEDULED
        assert after.due_at == pytest.approx(now + delay)
        assert await store.claim("w", ["default"], 1, LEASE, now=now + delay - 0.01) == []
        now += delay
    await store.claim("w", ["default"], 1, LEASE, now=now)
    [final] = await store.finish("w", [Report(task.id, 4, boom())], now=now)
    assert final is not None
    assert final.status is Status.DEAD
    assert len(final.attempts) == 4
    assert final.error == ErrorInfo("ValueError", "boom", "Traceback ...")


async def test_jitter_stays_within_the_exponential_envelope(store: Store) -> None:
    policy = RetryPolicy(max_retries=1, backoff="exponential_jitter", base_delay=4.0)
    tasks = [new(policy=policy) for _ in range(20)]
    await store.submit(tasks, now=T0)
    claimed = await store.claim("w", ["default"], 20, LEASE, now=T0)
    after = await store.finish("w", [Report(t.id, 1, boom()) for t in claimed], now=T0)
    delays = [t.due_at - T0 for t in after if t is not None and t.due_at is not None]
    assert len(delays) == 20
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


async def test_retry_on_lets_other_errors_fail_at_once(store: Store) -> None:
    policy = RetryPolicy(max_retries=5, retry_on=("ConnectionError",), dead_letter="drop")
    retried, failed = new(policy=policy), new(policy=policy)
    await store.submit([retried, failed], now=T0)
    await store.claim("w", ["default"], 2, LEASE, now=T0)
    a, b = await store.finish(
        "w",
        [Report(retried.id, 1, boom("ConnectionError")), Report(failed.id, 1, boom("KeyError"))],
        now=T0,
    )
    assert a is not None
    assert a.status is Status.SCHEDULED
    assert b is not None
    assert b.status is Status.FAILED


async def test_dead_letters_resubmit_with_a_fresh_budget(store: Store) -> None:
    task = new(policy=RetryPolicy(max_retries=0))
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, boom())], now=T0)
    assert (await store.statuses([task.id]))[task.id] is Status.DEAD
    dead = await store.query(TaskFilter(status=Status.DEAD), 10)
    assert [t.id for t in dead.tasks] == [task.id]
    assert await store.resubmit([task.id, "unknown"], now=T0 + 1) == [task.id]
    [again] = await store.claim("w", ["default"], 1, LEASE, now=T0 + 1)
    assert (again.id, again.attempt, again.retries, again.error) == (task.id, 2, 0, None)
    assert await store.resubmit([task.id]) == []


async def test_a_resubmitted_dead_task_has_fresh_retry_and_lost_budgets(store: Store) -> None:
    """One lost lease and one error spend both budgets; after a resubmit the next lost lease
    requeues the task again instead of failing it."""
    policy = RetryPolicy(max_retries=0, max_lost=1)
    task = new(policy=policy)
    await store.submit([task], now=T0)
    await store.claim("gone", ["default"], 1, LEASE, now=T0)
    await store.reap(now=T0 + LEASE + 1)
    now = T0 + LEASE + 1
    await store.claim("w", ["default"], 1, LEASE, now=now)
    [dead] = await store.finish("w", [Report(task.id, 2, boom())], now=now)
    assert dead is not None
    assert (dead.status, dead.retries, dead.lost) == (Status.DEAD, 0, 1)
    assert await store.resubmit([task.id], now=now + 1) == [task.id]
    again = (await store.get([task.id]))[task.id]
    assert (again.status, again.retries, again.lost) == (Status.SUBMITTED, 0, 0)
    await store.claim("gone-again", ["default"], 1, LEASE, now=now + 1)
    await store.reap(now=now + LEASE + 2)
    requeued = (await store.get([task.id]))[task.id]
    assert (requeued.status, requeued.retries, requeued.lost) == (Status.SCHEDULED, 0, 1)


async def test_a_failure_reported_without_an_error_records_one(store: Store) -> None:
    task = new(policy=RetryPolicy(dead_letter="drop"))
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    [failed] = await store.finish("w", [Report(task.id, 1, Outcome("failed"))], now=T0)
    assert failed is not None
    missing = ErrorInfo("Error", "the task failed without an error")
    assert (failed.status, failed.error, failed.attempts[0].error) == (
        Status.FAILED,
        missing,
        missing,
    )


async def test_handed_back_tasks_return_to_the_queue_without_costing_a_retry(
    store: Store,
) -> None:
    await store.submit([new()], now=T0)
    [task] = await store.claim("w", ["default"], 1, LEASE, now=T0)
    [back] = await store.finish("w", [Report(task.id, 1, Outcome("handed_back"))], now=T0)
    assert back is not None
    assert (back.status, back.retries, back.attempts[0].outcome) == (
        Status.SUBMITTED,
        0,
        "handed_back",
    )


# -- leases, heartbeats, cancellation ----------------------------------------------------------


async def test_renew_extends_leases_and_reports_lost_tasks(store: Store) -> None:
    await store.submit([new(), new()], now=T0)
    a, b = await store.claim("w", ["default"], 2, LEASE, now=T0)
    renewal = await store.renew("w", {a.id: 1, b.id: 1}, LEASE, now=T0 + 5)
    assert renewal.lost == []
    assert (await store.get([a.id]))[a.id].lease_expires_at == T0 + 5 + LEASE
    await store.cancel([b.id], now=T0 + 6)
    renewal = await store.renew("w", {a.id: 1, b.id: 1, "gone": 1}, LEASE, now=T0 + 7)
    assert sorted(renewal.lost) == sorted([b.id, "gone"])


async def test_reap_retries_tasks_whose_lease_expired(store: Store) -> None:
    task = new(policy=RetryPolicy(max_retries=1, backoff="constant", base_delay=0.0))
    await store.submit([task], now=T0)
    await store.claim("dead-worker", ["default"], 1, LEASE, now=T0)
    assert (await store.reap(now=T0 + LEASE - 1)).reaped == 0
    assert (await store.reap(now=T0 + LEASE + 1)).reaped == 1
    [again] = await store.claim("w2", ["default"], 1, LEASE, now=T0 + LEASE + 1)
    assert again.id == task.id
    assert again.attempts[0].outcome == "lease_lost"
    assert again.attempts[0].error is not None
    assert again.attempts[0].error.type == "LeaseLost"
    late = await store.finish("dead-worker", [Report(task.id, 1, Outcome("completed", 1))])
    assert late == [None]
    assert (await transitions(store))[task.id] == [
        Status.SUBMITTED,
        Status.STARTED,
        Status.STALLED,
        Status.SCHEDULED,
        Status.SUBMITTED,
        Status.STARTED,
    ]


async def test_lapsed_heartbeat_marks_the_task_stalled(store: Store) -> None:
    policy = RetryPolicy(max_heartbeat_interval=2.0, dead_letter="drop")
    task = new(policy=policy)
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.renew("w", {task.id: 1}, LEASE, heartbeats={task.id: T0 + 1.5}, now=T0 + 2)
    assert (await store.reap(now=T0 + 3)).stalled == 0
    report = await store.reap(now=T0 + 4)
    assert report.stalled == 1
    record = (await store.get([task.id]))[task.id]
    assert record.status is Status.FAILED
    assert record.attempts[0].outcome == "stalled"
    assert (await store.renew("w", {task.id: 1}, LEASE, now=T0 + 4)).lost == [task.id]


async def test_cancel_in_every_status(store: Store) -> None:
    waiting, scheduled, running, done = new(), new(due_at=T0 + 60), new(), new()
    await store.submit([running, done], now=T0)
    await store.claim("w", ["default"], 2, LEASE, now=T0)
    await store.finish("w", [Report(done.id, 1, Outcome("completed"))], now=T0)
    await store.submit([waiting, scheduled], now=T0)
    result = await store.cancel([waiting.id, scheduled.id, running.id, done.id, "nope"], now=T0)
    assert sorted(result.cancelled) == sorted([waiting.id, scheduled.id, running.id])
    assert result.not_cancellable == [done.id]
    assert result.unknown == ["nope"]
    statuses = await store.statuses([waiting.id, scheduled.id, running.id])
    assert set(statuses.values()) == {Status.CANCELLED}
    assert await store.claim("w", ["default"], 10, LEASE, now=T0 + 120) == []
    assert (await store.get([running.id]))[running.id].attempts[0].outcome == "cancelled"


Step = tuple[Status, str | None, str | None]
Scenario = Callable[[Store], Awaitable[str]]


async def history(store: Store, task_id: str) -> list[Step]:
    """The task's events: status, reason and worker."""
    events = await store.events(None, 1000)
    return [(e.status, e.reason, e.worker) for e in events if e.task_id == task_id]


async def reasons_due(store: Store) -> str:
    task = new(due_at=T0 + 5)
    await store.submit([task], now=T0)
    assert await store.promote_due(now=T0 + 5) == 1
    return task.id


async def reasons_handed_back(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, Outcome("handed_back"))], now=T0 + 1)
    return task.id


async def reasons_cancelled_by_the_task(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    stopped = Outcome("cancelled", error=ErrorInfo("CancelledError", "asked to stop"))
    await store.finish("w", [Report(task.id, 1, stopped)], now=T0 + 1)
    return task.id


async def reasons_cancelled_by_the_caller(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.cancel([task.id], reason="no longer wanted", now=T0 + 1)
    return task.id


async def reasons_cancelled_by_request(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.cancel([task.id], now=T0 + 1)
    return task.id


async def reasons_retried(store: Store) -> str:
    await store.submit([task := new(policy=RetryPolicy(max_retries=1))], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, boom())], now=T0 + 1)
    return task.id


async def reasons_dead_lettered_and_resubmitted(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, boom())], now=T0 + 1)
    assert await store.resubmit([task.id], now=T0 + 2) == [task.id]
    return task.id


async def reasons_lease_lost(store: Store) -> str:
    await store.submit([task := new()], now=T0)
    await store.claim("gone", ["default"], 1, LEASE, now=T0)
    assert (await store.reap(now=T0 + LEASE + 1)).reaped == 1
    return task.id


async def reasons_stalled(store: Store) -> str:
    policy = RetryPolicy(max_heartbeat_interval=2.0, dead_letter="drop")
    await store.submit([task := new(policy=policy)], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    assert (await store.reap(now=T0 + 3)).stalled == 1
    return task.id


S = Status
LOST = "worker gone stopped renewing its lease (lost)"
STUCK = "no heartbeat for more than 2 s"
REASONS: dict[Scenario, list[Step]] = {
    reasons_due: [(S.SCHEDULED, None, None), (S.SUBMITTED, "due", None)],
    reasons_handed_back: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.SUBMITTED, "handed back", "w"),
    ],
    reasons_cancelled_by_the_task: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.CANCELLED, "cancelled by the task", "w"),
    ],
    reasons_cancelled_by_the_caller: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.CANCELLED, "no longer wanted", "w"),
    ],
    reasons_cancelled_by_request: [
        (S.SUBMITTED, None, None),
        (S.CANCELLED, "cancelled by request", None),
    ],
    reasons_retried: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.SCHEDULED, "ValueError: boom", "w"),
    ],
    reasons_dead_lettered_and_resubmitted: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.FAILED, "ValueError: boom", "w"),
        (S.DEAD, "dead-lettered", "w"),
        (S.SUBMITTED, "resubmitted", None),
    ],
    reasons_lease_lost: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "gone"),
        (S.STALLED, LOST, "gone"),
        (S.SCHEDULED, f"LeaseLost: {LOST}", "gone"),
    ],
    reasons_stalled: [
        (S.SUBMITTED, None, None),
        (S.STARTED, None, "w"),
        (S.STALLED, STUCK, "w"),
        (S.FAILED, f"HeartbeatTimeout: {STUCK}", "w"),
    ],
}


@pytest.mark.parametrize("scenario", list(REASONS), ids=lambda f: f.__name__[8:])
async def test_every_transition_records_its_reason_and_worker(
    store: Store, scenario: Scenario
) -> None:
    task_id = await scenario(store)
    assert await history(store, task_id) == REASONS[scenario]


# -- reading -----------------------------------------------------------------------------------


async def test_bulk_statuses_answer_ten_thousand_ids_and_skip_unknown(store: Store) -> None:
    tasks = [new() for _ in range(10_000)]
    await store.submit(tasks)
    statuses = await store.statuses([t.id for t in tasks] + ["unknown"])
    assert len(statuses) == 10_000
    assert set(statuses.values()) == {Status.SUBMITTED}


async def paged_events(store: Store, size: int) -> list[Event]:
    """Every event, read ``size`` at a time from cursor to cursor."""
    seen: list[Event] = []
    cursor = None
    while page := await store.events(cursor, size):
        seen.extend(page)
        cursor = page[-1].cursor
    return seen


async def test_events_page_from_cursor_to_cursor_exactly_once(store: Store) -> None:
    tasks = [new() for _ in range(30)]
    await store.submit(tasks)
    claimed = await store.claim("w", ["default"], 30, LEASE)
    await store.finish("w", [Report(t.id, 1, Outcome("completed")) for t in claimed])
    seen = await paged_events(store, 7)
    assert len(seen) == 90
    assert seen == await store.events(None, 1000)
    assert len({e.cursor for e in seen}) == 90
    assert await store.events(seen[-1].cursor, 7) == []
    by_task = await transitions(store)
    assert all(v == [Status.SUBMITTED, Status.STARTED, Status.COMPLETED] for v in by_task.values())


async def test_a_long_events_page_is_whole_and_in_order_at_every_size(store: Store) -> None:
    """Around the size a backend may split one read at (SQLite reads 256 events on the event
    loop's thread and the rest on its own thread), a page is the same as pages of 1."""
    await store.submit([new() for _ in range(600)])
    one_by_one = await paged_events(store, 1)
    assert len(one_by_one) == 600
    for limit in (255, 256, 257, 511, 512, 600, 1000):
        assert await store.events(None, limit) == one_by_one[:limit]
    middle = one_by_one[99].cursor
    assert await store.events(middle, 300) == one_by_one[100:400]


async def test_latest_event_is_the_newest_cursor_even_after_pruning(store: Store) -> None:
    assert await store.latest_event() == "0"
    task = new()
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, Outcome("completed"))], now=T0)
    newest = (await store.events(None, 100))[-1].cursor
    assert await store.latest_event() == newest
    await store.prune(before=T0 + 1)
    assert await store.events(None, 100) == []
    assert await store.latest_event() == newest


async def test_query_pages_newest_first_with_filters(store: Store) -> None:
    tasks = [new(name="a" if i % 2 else "b") for i in range(25)]
    for task in tasks:
        await store.submit([task])
    ids: list[str] = []
    cursor = None
    while True:
        page = await store.query(TaskFilter(name="a"), 5, cursor)
        ids.extend(t.id for t in page.tasks)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert ids == [t.id for t in reversed(tasks) if t.name == "a"]


async def test_prune_deletes_only_old_finished_tasks(store: Store) -> None:
    old, fresh, waiting = new(), new(), new()
    await store.submit([old, fresh, waiting], now=T0)
    await store.claim("w", ["default"], 2, LEASE, now=T0)
    await store.finish("w", [Report(old.id, 1, Outcome("completed"))], now=T0)
    await store.finish("w", [Report(fresh.id, 1, Outcome("completed"))], now=T0 + 100)
    assert await store.prune(before=T0 + 50) == 1
    assert set(await store.statuses([old.id, fresh.id, waiting.id])) == {fresh.id, waiting.id}


async def test_prune_deletes_old_dead_letters_too(store: Store) -> None:
    dead, fresh = new(), new()
    await store.submit([dead, fresh], now=T0)
    await store.claim("w", ["default"], 2, LEASE, now=T0)
    await store.finish("w", [Report(dead.id, 1, boom())], now=T0)
    await store.finish("w", [Report(fresh.id, 1, boom())], now=T0 + 100)
    assert set((await store.statuses([dead.id, fresh.id])).values()) == {Status.DEAD}
    assert await store.prune(before=T0 + 50) == 1
    assert list(await store.statuses([dead.id, fresh.id])) == [fresh.id]
    assert (await store.query(TaskFilter(status=Status.DEAD), 10)).tasks[0].id == fresh.id


async def test_event_cursors_are_opaque_strings_and_bad_ones_are_refused(store: Store) -> None:
    await store.submit([new(), new()], now=T0)
    first, second = await store.events(None, 10)
    assert isinstance(first.cursor, str)
    assert await store.events(first.cursor, 10) == [second]
    assert await store.events("0", 10) == [first, second]
    for bad in ("-1", "x", "1 ", "", "9" * 40):
        with pytest.raises(BadCursor):
            await store.events(bad, 10)
        with pytest.raises(BadCursor):
            await store.query(TaskFilter(), 10, bad)


async def test_workers_and_task_definitions_are_registered(store: Store) -> None:
    info = WorkerInfo("w1", "host", ("default", "q2"), T0, T0, 0)
    definition = TaskDefinition("t.add", "q2", RetryPolicy(max_retries=3))
    await store.register_worker(info, [definition], now=T0)
    assert [w.id for w in await store.workers()] == ["w1"]
    assert (await store.task_definitions())["t.add"] == definition
    await store.unregister_worker("w1")
    assert await store.workers() == []


async def test_workers_are_listed_with_their_slots(store: Store) -> None:
    await store.register_worker(WorkerInfo("w1", "host", ("default",), T0, T0, 0, 8), [], now=T0)
    await store.register_worker(WorkerInfo("w2", "host", ("q2",), T0 + 1, T0, 0, 1), [], now=T0)
    assert [(w.id, w.slots) for w in await store.workers()] == [("w1", 8), ("w2", 1)]
    await store.register_worker(WorkerInfo("w1", "host", ("default",), T0, T0, 0, 3), [], now=T0)
    assert [(w.id, w.slots) for w in await store.workers()] == [("w1", 3), ("w2", 1)]


async def test_queue_stats_name_the_waiting_tasks_no_registered_worker_can_run(
    store: Store,
) -> None:
    """A rolling deploy adds ``t.new``: until a worker that has it registers, its tasks wait
    and the queue says so; a worker that did not say what it runs may run anything."""
    old = WorkerInfo("old", "host", ("default",), T0, T0, 0, 4, ("t.add",))
    await store.register_worker(old, [], now=T0)
    await store.submit([new(), new("t.new"), new("t.new"), new("t.new", queue="q2")], now=T0)
    await store.submit([new("t.new", due_at=T0 + 60)], now=T0)

    def unrunnable(stats: list[QueueStats]) -> dict[str, dict[str, int]]:
        return {s.config.name: s.unrunnable for s in stats}

    assert unrunnable(await store.queue_stats()) == {"default": {"t.new": 3}, "q2": {"t.new": 1}}
    assert [w.tasks for w in await store.workers()] == [("t.add",)]
    fresh = WorkerInfo("new", "host", ("default",), T0, T0, 0, 4, ("t.add", "t.new"))
    await store.register_worker(fresh, [], now=T0)
    assert unrunnable(await store.queue_stats()) == {"default": {}, "q2": {"t.new": 1}}
    await store.register_worker(WorkerInfo("older", "host", ("q2",), T0, T0, 0, 4), [], now=T0)
    assert unrunnable(await store.queue_stats()) == {"default": {}, "q2": {}}


async def test_wait_for_change_wakes_on_another_connections_write(
    make_store: StoreFactory,
) -> None:
    waiter, writer = make_store(), make_store()
    await writer.statuses([])
    await waiter.claim("w", ["default"], 1, LEASE)
    waiting = asyncio.create_task(waiter.wait_for_change(30.0))
    await asyncio.sleep(0)
    written = time.monotonic()
    await writer.submit([new()])
    await asyncio.wait_for(waiting, 10.0)
    assert time.monotonic() - written < 5.0, "woken by the write, not by its 30 s timeout"


# -- the state machine -------------------------------------------------------------------------


def test_check_transition_rejects_everything_outside_the_table() -> None:
    for current, target in itertools.product(Status, Status):
        if target in TRANSITIONS[current]:
            check_transition("t", current, target)
        else:
            with pytest.raises(InvalidTransition):
                check_transition("t", current, target)


async def test_random_operations_only_ever_make_allowed_transitions(store: Store) -> None:
    """Drive the store with random calls; every recorded step must be in the table."""
    rng = random.Random(7)
    policy = RetryPolicy(
        max_retries=2, backoff="constant", base_delay=1.0, max_heartbeat_interval=3
    )
    ids: list[str] = []
    now = T0
    for _ in range(400):
        now += rng.choice([0.0, 0.5, 2.0, 11.0])
        op = rng.randrange(8)
        if op == 0 or not ids:
            task = new(policy=policy, due_at=now + rng.choice([0, 2]))
            ids.append(task.id)
            await store.submit([task], now=now)
        elif op == 1:
            await store.claim(rng.choice("ab"), ["default"], rng.randrange(1, 4), LEASE, now=now)
        elif op in (2, 3):
            task_id = rng.choice(ids)
            record = (await store.get([task_id]))[task_id]
            outcome = rng.choice(
                [Outcome("completed"), boom(), Outcome("handed_back"), Outcome("timeout")]
            )
            worker = record.worker or "a"
            await store.finish(worker, [Report(task_id, record.attempt, outcome)], now=now)
        elif op == 4:
            await store.cancel([rng.choice(ids)], now=now)
        elif op == 5:
            await store.reap(now=now)
        elif op == 6:
            await store.resubmit([rng.choice(ids)], now=now)
        else:
            await store.promote_due(now=now)
    history = await transitions(store)
    steps = [(a, b) for seq in history.values() for a, b in itertools.pairwise(seq)]
    assert len(steps) > 200
    assert all(b in TRANSITIONS[a] for a, b in steps)
    assert {Status.COMPLETED, Status.DEAD, Status.CANCELLED} <= {
        s for seq in history.values() for s in seq
    }


async def test_a_lost_lease_requeues_without_spending_retries_up_to_max_lost(
    store: Store,
) -> None:
    policy = RetryPolicy(max_retries=0, retry_on=("ConnectionError",), max_lost=2)
    task = new(policy=policy)
    await store.submit([task], now=T0)
    now = T0
    for lost in (1, 2):
        [claimed] = await store.claim(f"gone-{lost}", ["default"], 1, LEASE, now=now)
        assert claimed.attempt == lost
        now += LEASE + 1
        assert (await store.reap(now=now)).reaped == 1
        record = (await store.get([task.id]))[task.id]
        assert (record.status, record.retries, record.lost) == (Status.SCHEDULED, 0, lost)
        assert record.due_at == now
    await store.claim("gone-3", ["default"], 1, LEASE, now=now)
    await store.reap(now=now + LEASE + 1)
    record = (await store.get([task.id]))[task.id]
    assert (record.status, record.lost) == (Status.DEAD, 3)
    assert [a.outcome for a in record.attempts] == ["lease_lost"] * 3
    assert record.error is not None
    assert record.error.type == "LeaseLost"
    history = [e for e in await store.events(None, 1000) if e.task_id == task.id]
    assert history[-2].status is Status.FAILED
    assert history[-2].reason is not None
    assert "lost 3 attempt(s); max_lost is 2" in history[-2].reason


async def test_max_lost_zero_fails_at_the_first_lost_lease(store: Store) -> None:
    task = new(policy=RetryPolicy(max_retries=5, max_lost=0, dead_letter="drop"))
    await store.submit([task], now=T0)
    await store.claim("gone", ["default"], 1, LEASE, now=T0)
    await store.reap(now=T0 + LEASE + 1)
    record = (await store.get([task.id]))[task.id]
    assert (record.status, record.retries, record.lost) == (Status.FAILED, 0, 1)


async def test_a_lost_lease_after_errors_keeps_the_error_budget_spent(store: Store) -> None:
    policy = RetryPolicy(max_retries=1, backoff="constant", base_delay=0.0, max_lost=1)
    task = new(policy=policy)
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, boom())], now=T0)
    await store.claim("gone", ["default"], 1, LEASE, now=T0)
    await store.reap(now=T0 + LEASE + 1)
    [third] = await store.claim("w", ["default"], 1, LEASE, now=T0 + LEASE + 1)
    assert (third.attempt, third.retries, third.lost) == (3, 1, 1)
    [final] = await store.finish("w", [Report(task.id, 3, boom())], now=T0 + LEASE + 1)
    assert final is not None
    assert final.status is Status.DEAD


async def test_workers_not_seen_for_long_are_dropped_by_reap(store: Store) -> None:
    await store.register_worker(WorkerInfo("old", "h", ("default",), T0, T0, 0), [], now=T0)
    await store.register_worker(WorkerInfo("new", "h", ("default",), T0, T0, 0), [], now=T0 + 900)
    await store.reap(now=T0 + 901)
    assert [w.id for w in await store.workers()] == ["new"]


# -- what operators see: counts, progress and log lines --------------------------------------


async def test_counts_sum_tasks_finishes_and_durations(store: Store) -> None:
    done, failed, waiting, later = new(), new(name="t.mul"), new(queue="q2"), new(queue="q2")
    await store.submit([done, failed], now=T0)
    await store.submit([waiting], now=T0 + 30)
    await store.submit([later], now=T0 + 40)
    await store.claim("w", ["default"], 2, LEASE, now=T0 + 2)
    await store.finish("w", [Report(done.id, 1, Outcome("completed"))], now=T0 + 5)
    await store.finish("w", [Report(failed.id, 1, boom())], now=T0 + 70)

    counts = await store.counts(since=T0, bucket=60.0)
    assert counts.tasks == {
        ("default", "t.add", Status.COMPLETED): 1,
        ("default", "t.mul", Status.DEAD): 1,
        ("q2", "t.add", Status.SUBMITTED): 2,
    }
    assert counts.retries == {("default", "t.add"): 0, ("default", "t.mul"): 0, ("q2", "t.add"): 0}
    assert counts.oldest_ready == {"q2": T0 + 30}
    assert counts.finished == {(T0, Status.COMPLETED): 1, (T0 + 60, Status.DEAD): 1}
    wait, run = counts.wait["default"], counts.run["default"]
    assert wait.count == 2
    assert wait.total == pytest.approx(4.0)
    assert wait.buckets[DURATION_BUCKETS.index(1.0)] == 0
    assert wait.buckets[DURATION_BUCKETS.index(5.0)] == 2
    assert run.count == 2
    assert run.total == pytest.approx(71.0)
    assert run.buckets[DURATION_BUCKETS.index(5.0)] == 1
    assert run.buckets[DURATION_BUCKETS.index(300.0)] == 2
    assert "q2" not in counts.run
    assert (await store.counts(since=T0 + 120)).finished == {}


async def test_counts_retries_of_a_retried_task(store: Store) -> None:
    task = new(policy=RetryPolicy(max_retries=2, backoff="constant", base_delay=1.0))
    await store.submit([task], now=T0)
    await store.claim("w", ["default"], 1, LEASE, now=T0)
    await store.finish("w", [Report(task.id, 1, boom())], now=T0 + 1)
    counts = await store.counts(since=T0)
    assert counts.retries == {("default", "t.add"): 1}
    assert counts.tasks == {("default", "t.add", Status.SCHEDULED): 1}


async def test_counts_follow_retries_resubmits_deletes_and_prunes(store: Store) -> None:
    """Counts cover the tasks kept: a second attempt replaces the first's wait, a resubmitted
    dead task leaves the finishes and the run times, and deleted or pruned tasks leave it all."""
    retried = new(policy=RetryPolicy(max_retries=1, backoff="constant", base_delay=0.0))
    kept, dropped = new(queue="q2"), new(queue="q2")
    await store.submit([retried, kept, dropped], now=T0)
    await store.claim("w", ["default", "q2"], 3, LEASE, now=T0 + 1)
    await store.finish("w", [Report(retried.id, 1, boom())], now=T0 + 2)
    await store.finish("w", [Report(kept.id, 1, Outcome("completed"))], now=T0 + 3)
    await store.finish("w", [Report(dropped.id, 1, Outcome("completed"))], now=T0 + 3)
    await store.claim("w", ["default"], 1, LEASE, now=T0 + 4)
    await store.finish("w", [Report(retried.id, 2, boom())], now=T0 + 6)

    counts = await store.counts(since=T0)
    assert counts.tasks == {
        ("default", "t.add", Status.DEAD): 1,
        ("q2", "t.add", Status.COMPLETED): 2,
    }
    assert counts.retries == {("default", "t.add"): 1, ("q2", "t.add"): 0}
    assert counts.wait["default"].count == 1
    assert counts.wait["default"].total == pytest.approx(4.0)
    assert counts.run["default"].count == 1
    assert counts.finished == {(T0, Status.COMPLETED): 2, (T0, Status.DEAD): 1}

    assert await store.resubmit([retried.id], now=T0 + 7) == [retried.id]
    assert await store.delete([dropped.id], [Status.COMPLETED]) == [dropped.id]
    counts = await store.counts(since=T0)
    assert counts.tasks == {
        ("default", "t.add", Status.SUBMITTED): 1,
        ("q2", "t.add", Status.COMPLETED): 1,
    }
    assert counts.retries == {("default", "t.add"): 0, ("q2", "t.add"): 0}
    assert counts.oldest_ready == {"default": T0}
    assert counts.finished == {(T0, Status.COMPLETED): 1}
    assert "default" not in counts.run
    assert counts.wait["q2"].count == 1

    assert await store.prune(before=T0 + 10) == 1
    assert await store.cancel([retried.id], now=T0 + 11) == CancelResult([retried.id])
    assert await store.delete([retried.id], [Status.CANCELLED]) == [retried.id]
    counts = await store.counts(since=T0)
    assert (counts.tasks, counts.retries, counts.finished) == ({}, {}, {})
    assert (counts.oldest_ready, counts.wait, counts.run) == ({}, {}, {})


def line(message: str, at: float = T0) -> LogLine:
    return LogLine(at, "INFO", message)


async def test_notes_keep_the_latest_progress_and_every_line_per_attempt(store: Store) -> None:
    task = new(policy=RetryPolicy(max_retries=1, backoff="constant", base_delay=0.0))
    await store.submit([task], now=T0)
    await store.claim("w1", ["default"], 1, LEASE, now=T0)
    await store.add_notes("w1", [AttemptNotes(task.id, 1, 0.25, "loading", (line("a"),))])
    await store.add_notes(
        "w1",
        [
            AttemptNotes(task.id, 1, 0.5, "halfway", (line("b"), line("c"))),
            AttemptNotes("ghost", 1, 1.0, "", (line("lost"),)),
        ],
    )
    [first] = await store.notes(task.id)
    assert (first.attempt, first.progress, first.message) == (1, 0.5, "halfway")
    assert [ln.message for ln in first.lines] == ["a", "b", "c"]

    await store.finish("w1", [Report(task.id, 1, boom())], now=T0 + 1)
    await store.add_notes("w1", [AttemptNotes(task.id, 1, None, "", (line("late"),))])
    await store.claim("w2", ["default"], 1, LEASE, now=T0 + 2)
    await store.add_notes("w1", [AttemptNotes(task.id, 1, 0.9, "stale", (line("fenced"),))])
    await store.add_notes("w2", [AttemptNotes(task.id, 2, None, "", (line("second"),))])
    notes = await store.notes(task.id)
    assert [(n.attempt, n.progress, n.message) for n in notes] == [
        (1, 0.5, "halfway"),
        (2, None, ""),
    ]
    assert [ln.message for ln in notes[0].lines] == ["a", "b", "c", "late"]
    assert [ln.message for ln in notes[1].lines] == ["second"]
    assert await store.notes("ghost") == []


async def test_progress_of_many_tasks_is_each_asked_attempt_s_latest(store: Store) -> None:
    retried = new(policy=RetryPolicy(max_retries=1, backoff="constant", base_delay=0.0))
    quiet, other = new(), new()
    await store.submit([retried, quiet, other], now=T0)
    await store.claim("w1", ["default"], 3, LEASE, now=T0)
    await store.add_notes(
        "w1",
        [
            AttemptNotes(retried.id, 1, 0.25, "first try", ()),
            AttemptNotes(retried.id, 1, 0.5, "halfway", ()),
            AttemptNotes(other.id, 1, 0.75, "", (line("x"),)),
            AttemptNotes(quiet.id, 1, None, "", (line("no progress"),)),
        ],
    )
    asked = [(retried.id, 1), (quiet.id, 1), (other.id, 1), ("ghost", 1)]
    assert await store.progress(asked) == {
        retried.id: (0.5, "halfway"),
        other.id: (0.75, ""),
    }
    await store.finish("w1", [Report(retried.id, 1, boom())], now=T0 + 1)
    await store.claim("w2", ["default"], 1, LEASE, now=T0 + 2)
    assert await store.progress([(retried.id, 2)]) == {}
    await store.add_notes("w2", [AttemptNotes(retried.id, 2, 0.1, "again", ())])
    assert await store.progress([(retried.id, 2), (other.id, 1)]) == {
        retried.id: (0.1, "again"),
        other.id: (0.75, ""),
    }
    assert await store.progress([]) == {}
    many = [(f"ghost-{i}", 1) for i in range(1200)] + [(other.id, 1)]
    assert await store.progress(many) == {other.id: (0.75, "")}


async def test_notes_go_with_their_task(store: Store) -> None:
    pruned, dead = new(), new()
    await store.submit([pruned, dead], now=T0)
    await store.claim("w", ["default"], 2, LEASE, now=T0)
    for task in (pruned, dead):
        await store.add_notes("w", [AttemptNotes(task.id, 1, 1.0, "done", (line("x"),))])
    await store.finish("w", [Report(pruned.id, 1, Outcome("completed"))], now=T0)
    await store.finish("w", [Report(dead.id, 1, boom())], now=T0)
    assert await store.delete([dead.id], [Status.DEAD]) == [dead.id]
    assert await store.prune(before=T0 + 1) == 1
    [again] = await store.submit([new(task_id=pruned.id)], now=T0 + 2)
    assert again.created
    assert await store.notes(pruned.id) == []
    assert await store.notes(dead.id) == []


async def test_finishes_fall_in_buckets_counted_from_since(store: Store) -> None:
    """Finishes are kept to the second: the second holding ``since`` counts, and each later one
    goes to the bucket its whole second starts in."""
    tasks = [new() for _ in range(4)]
    await store.submit(tasks, now=T0)
    await store.claim("w", ["default"], 4, LEASE, now=T0)
    for task, at in zip(tasks, (T0 + 4.9, T0 + 5.7, T0 + 65.2, T0 + 66.1), strict=True):
        await store.finish("w", [Report(task.id, 1, Outcome("completed"))], now=at)
    since = T0 + 5.5
    counts = await store.counts(since=since, bucket=60.0)
    assert counts.finished == {(since, Status.COMPLETED): 2, (since + 60, Status.COMPLETED): 1}


Finished = dict[tuple[float, Status], int]


def by_bucket(finishes: list[tuple[float, Status]], since: int, bucket: int) -> Finished:
    """What ``counts`` must say: each finish in the bucket its whole second starts in."""
    out: Finished = {}
    for at, status in finishes:
        second = int(at // 1)
        if second >= since:
            key = (float(since + (second - since) // bucket * bucket), status)
            out[key] = out.get(key, 0) + 1
    return out


def merged(finished: Finished, since: int, bucket: int) -> Finished:
    """Narrower buckets from ``since`` summed into buckets of ``bucket`` seconds."""
    out: Finished = {}
    for (start, status), n in finished.items():
        key = (float(since + (start - since) // bucket * bucket), status)
        out[key] = out.get(key, 0) + n
    return out


async def test_whole_minute_windows_count_as_the_seconds_do(store: Store) -> None:
    """A window that starts on a minute and counts whole minutes is read from the per-minute
    sums, any other from the per-second ones: both give the same buckets, across an hour's end
    and after deletes and prunes."""
    m = int(T0 - T0 % 60 + 60)  # a minute's first second, 780 s before an hour ends
    assert (m % 60, (m + 780) % 3600) == (0, 0)
    offsets = [-0.5, 0.0, 0.4, 59.9, 60.0, 61.5, 119.99, 185.0, 240.5, 779.0, 780.2, 900.0, 1000.7]
    kinds = [Status.COMPLETED, Status.DEAD, Status.CANCELLED]
    tasks = [new(queue="idle" if i % 3 == 2 else "run") for i in range(len(offsets))]
    await store.submit(tasks, now=m - 200)
    await store.claim("w", ["run"], len(tasks), 1e6, now=m - 100)
    finishes: dict[str, tuple[float, Status]] = {}
    for i, (task, offset) in enumerate(zip(tasks, offsets, strict=True)):
        kind, at = kinds[i % 3], m + offset
        if kind == Status.CANCELLED:
            assert await store.cancel([task.id], now=at) == CancelResult([task.id])
        else:
            outcome = Outcome("completed") if kind == Status.COMPLETED else boom()
            await store.finish("w", [Report(task.id, 1, outcome)], now=at)
        finishes[task.id] = (at, kind)

    async def agree() -> None:
        kept = list(finishes.values())
        for since, bucket in [(m, 60), (m, 120), (m - 60, 180), (m + 60, 3600)]:
            aligned = (await store.counts(since=since, bucket=bucket)).finished
            assert aligned == by_bucket(kept, since, bucket), (since, bucket)
            by_seconds = (await store.counts(since=since, bucket=30)).finished
            assert aligned == merged(by_seconds, since, bucket), (since, bucket)

    await agree()
    assert (await store.counts(since=m, bucket=60)).finished == {
        (m, Status.DEAD): 1,
        (m, Status.CANCELLED): 1,
        (m, Status.COMPLETED): 1,
        (m + 60, Status.DEAD): 1,
        (m + 60, Status.CANCELLED): 1,
        (m + 60, Status.COMPLETED): 1,
        (m + 180, Status.DEAD): 1,
        (m + 240, Status.CANCELLED): 1,
        (m + 720, Status.COMPLETED): 1,
        (m + 780, Status.DEAD): 1,
        (m + 900, Status.CANCELLED): 1,
        (m + 960, Status.COMPLETED): 1,
    }

    gone = [tasks[3].id, tasks[10].id]  # a completed one (59.9) and a dead one (780.2)
    assert sorted(await store.delete(gone, list(kinds))) == sorted(gone)
    for task_id in gone:
        del finishes[task_id]
    await agree()
    pruned = [t for t, (at, _) in finishes.items() if at < m + 120]
    assert await store.prune(before=m + 120) == len(pruned)
    for task_id in pruned:
        del finishes[task_id]
    await agree()
    assert (await store.counts(since=m, bucket=60)).finished == {
        (m + 180, Status.DEAD): 1,
        (m + 240, Status.CANCELLED): 1,
        (m + 720, Status.COMPLETED): 1,
        (m + 900, Status.CANCELLED): 1,
        (m + 960, Status.COMPLETED): 1,
    }
