"""Backoff due times, retry_on, the dead letter queue, timeouts and heartbeats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn
from .support import events, new_task, policy_of, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

BASE = 0.2
CAP = 0.5
EXPECTED = {  # delay before retry 1, 2, 3
    "constant": [0.2, 0.2, 0.2],
    "linear": [0.2, 0.4, 0.5],
    "exponential": [0.2, 0.4, 0.5],
    "exponential_jitter": [0.2, 0.4, 0.5],  # upper bounds; the delay is uniform below them
}


async def test_backoff_due_times_follow_each_formula(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(concurrency=8, poll_cap=0.05)
    await worker.registered(store)
    ids = {
        kind: new_task(
            "wt.fail",
            policy=policy_of(
                "wt.fail", max_retries=3, backoff=kind, base_delay=BASE, max_delay=CAP
            ),
            log=str(log),
        )
        for kind in EXPECTED
    }
    await submit(store, list(ids.values()))
    # Sample each task while it waits for a retry: (retry number, due time, last attempt's end).
    due: dict[str, dict[int, tuple[float, float]]] = {kind: {} for kind in EXPECTED}

    async def all_dead() -> bool:
        records = await store.get([t.id for t in ids.values()])
        for kind, new in ids.items():
            record = records[new.id]
            if record.status == Status.SCHEDULED and record.due_at is not None:
                finished = record.attempts[-1].finished_at
                assert finished is not None
                due[kind][record.retries] = (record.due_at, finished)
        return all(r.status == Status.DEAD for r in records.values())

    await wait_for(all_dead, 15, "every backoff task to exhaust its retries", step=0.01)
    records = await store.get([t.id for t in ids.values()])
    for kind, new in ids.items():
        record = records[new.id]
        assert len(record.attempts) == 4
        # A jittered delay can be shorter than one sample of the loop above, so a retry's wait
        # may go unseen; every wait of the other formulas lasts long enough to be seen.
        if kind != "exponential_jitter":
            assert sorted(due[kind]) == [1, 2, 3], (kind, due[kind])
        for retry, bound in enumerate(EXPECTED[kind], start=1):
            started = record.attempts[retry].started_at
            failed = record.attempts[retry - 1].finished_at
            assert started is not None
            assert failed is not None
            # However short the wait, the retry never starts before its attempt failed, nor
            # long after its longest allowed delay.
            assert 0 <= started - failed < bound + 0.5, (kind, retry, started - failed)
            if retry not in due[kind]:
                continue
            due_at, failed_at = due[kind][retry]
            delay = due_at - failed_at
            if kind == "exponential_jitter":
                assert 0 <= delay <= bound + 1e-6, (kind, retry, delay)
            else:
                assert delay == pytest.approx(bound, abs=1e-6), (kind, retry, delay)
            # ... and the retry did not start before it was due, nor long after.
            assert due_at - 1e-6 <= started < due_at + 0.5, (kind, retry, started - due_at)


async def test_retry_on_fails_other_exceptions_at_once(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker = spawn()
    await worker.registered(store)
    policy = policy_of("wt.fail", max_retries=2, base_delay=0.0, retry_on=("ConnectionError",))
    retried = new_task("wt.fail", policy=policy, log=str(log), error="ConnectionError")
    subclass = new_task("wt.fail", policy=policy, log=str(log), error="ConnectionResetError")
    not_retried = new_task("wt.fail", policy=policy, log=str(log), error="ValueError")
    ids = [retried.id, subclass.id, not_retried.id]
    await submit(store, [retried, subclass, not_retried])
    records = await wait_statuses(store, ids, {Status.DEAD}, 10)
    assert len(records[retried.id].attempts) == 3
    assert len(records[subclass.id].attempts) == 3, "a subclass of a retry_on type is retried"
    assert len(records[not_retried.id].attempts) == 1
    error = records[not_retried.id].error
    assert error is not None
    assert error.type == "ValueError"
    sub_error = records[subclass.id].error
    assert sub_error is not None
    assert sub_error.bases[:3] == ("ConnectionError", "OSError", "Exception")


async def test_dead_letter_then_fixed_and_resubmitted(
    store: Store, spawn: Spawn, log: Path, tmp_path: Path
) -> None:
    worker = spawn()
    await worker.registered(store)
    flag = tmp_path / "fixed"
    policy = policy_of("wt.fail", max_retries=2, backoff="constant", base_delay=0.1)
    new = new_task("wt.fail", policy=policy, log=str(log), fixed_flag=str(flag))
    await submit(store, [new])
    dead = (await wait_statuses(store, [new.id], {Status.DEAD}, 10))[new.id]
    assert [a.number for a in dead.attempts] == [1, 2, 3]
    assert all(a.error is not None and a.error.type == "ValueError" for a in dead.attempts)
    assert dead.error is not None
    assert "attempt 3 failed on purpose" in dead.error.message

    flag.touch()  # "the code is fixed"
    assert await store.resubmit([new.id]) == [new.id]
    done = (await wait_statuses(store, [new.id], {Status.COMPLETED}, 10))[new.id]
    assert done.result == "fixed"
    assert len(done.attempts) == 4
    assert done.attempts[-1].outcome == "completed"


@pytest.mark.parametrize("name", ["wt.slow", "wt.slow_sync"])
async def test_timeout_fails_the_attempt_with_a_timeout_error(
    store: Store, spawn: Spawn, log: Path, name: str
) -> None:
    worker = spawn()
    await worker.registered(store)
    once = new_task(name, seconds=5.0, log=str(log))
    retried = new_task(
        name, policy=policy_of(name, max_retries=1, base_delay=0.0), seconds=5.0, log=str(log)
    )
    await submit(store, [once, retried])
    records = await wait_statuses(store, [once.id, retried.id], {Status.DEAD}, 10)
    for new, attempts in ((once, 1), (retried, 2)):
        record = records[new.id]
        assert len(record.attempts) == attempts
        for attempt in record.attempts:
            assert attempt.outcome == "timeout"
            assert attempt.error is not None
            assert attempt.error.type == "TimeoutError"
            assert "timeout of 0.5 s" in attempt.error.message
            assert attempt.finished_at is not None
            assert 0.5 <= attempt.finished_at - attempt.started_at < 1.0


async def test_heartbeat_lapse_stalls_then_retries(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(lease=30.0)  # heartbeats must still reach the store well inside 0.5 s
    await worker.registered(store)
    new = new_task("wt.stop_beating", log=str(log), beat_for=1.5)
    await submit(store, [new])
    record = (await wait_statuses(store, [new.id], {Status.COMPLETED}, 10))[new.id]
    assert record.result == "recovered"
    first, second = record.attempts
    assert first.outcome == "stalled"
    assert first.error is not None
    assert first.error.type == "HeartbeatTimeout"
    assert second.outcome == "completed"
    # It beat for 1.5 s, three times its 0.5 s allowance, without being stalled ...
    [silent] = events(log, "silent")
    assert first.finished_at is not None
    assert first.finished_at > silent["at"] >= first.started_at + 1.5
    # ... and was stalled soon after it went quiet, and its coroutine cancelled.
    assert first.finished_at - silent["at"] < 1.0

    async def attempt_one_cancelled() -> bool:
        return [e["attempt"] for e in events(log, "cancelled")] == [1]

    await wait_for(attempt_one_cancelled, 2, "the stalled attempt to be cancelled")
    history = [e.status for e in await store.events(None, 1000) if e.task_id == new.id]
    assert history == [
        Status.SUBMITTED,
        Status.STARTED,
        Status.STALLED,
        Status.SCHEDULED,
        Status.SUBMITTED,
        Status.STARTED,
        Status.COMPLETED,
    ]
    print(f"stalled {first.finished_at - silent['at']:.2f} s after the last heartbeat window")
    assert time.time() >= first.finished_at
