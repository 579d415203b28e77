"""The executor's submission, job table and change-feed reader, each without Airflow: workloads
are stand-ins read by attribute, the Manager is a real ``jobbers manager``."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_jobbers import protocol
from airflow_jobbers.scheduler.feed import FeedReader
from airflow_jobbers.scheduler.jobtable import Job, JobTable
from airflow_jobbers.scheduler.submission import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Submission,
    Submitter,
    build,
    callback_job_id,
    clamp_priority,
)

jobbers = pytest.importorskip("jobbers")

from jobbers.models import Outcome, TaskRecord  # noqa: E402
from jobbers.store.base import Report  # noqa: E402
from jobbers.store.sqlite import SQLiteStore  # noqa: E402


class _Workload(SimpleNamespace):
    def model_dump_json(self) -> str:
        return json.dumps({"type": self.type, "token": "t", "ti": {"id": "x"}})


def _task(ext_id: str | None = None, queue: str = "default", weight: Any = 1) -> _Workload:
    ti = SimpleNamespace(
        key=("dag", "task", "run", 1, -1),
        external_executor_id=ext_id,
        queue=queue,
        priority_weight=weight,
    )
    return _Workload(type="ExecuteTask", ti=ti)


def _callback(callback_id: str, data: Any = None) -> _Workload:
    return _Workload(type="ExecuteCallback", callback=SimpleNamespace(id=callback_id, data=data))


# -- submission ---------------------------------------------------------------------------


def test_a_task_instance_job_id_is_its_preassigned_external_executor_id() -> None:
    ext = str(uuid.uuid4())
    sub = build(_task(ext, queue="gpu", weight=7), "jobbers-default")
    assert sub is not None
    assert (sub.job_id, sub.preassigned, sub.key) == (ext, True, ("dag", "task", "run", 1, -1))
    assert sub.body["id"] == ext
    assert (sub.body["queue"], sub.body["priority"]) == ("gpu", 7)
    assert sub.body["name"] == protocol.TASK_NAME
    assert sub.body["kwargs"][protocol.WORKLOAD_KWARG]["type"] == "ExecuteTask"
    fresh = build(_task(None), "jobbers-default")
    assert fresh is not None
    assert not fresh.preassigned
    assert fresh.body["queue"] == "jobbers-default"
    assert uuid.UUID(fresh.job_id)


def test_the_same_callback_always_gets_the_same_job_id() -> None:
    first = build(_callback("0190-cb-1", {"queue": "alerts"}), "default")
    again = build(_callback("0190-cb-1"), "default")
    other = build(_callback("0190-cb-2"), "default")
    assert first is not None
    assert again is not None
    assert other is not None
    assert first.job_id == again.job_id == callback_job_id("0190-cb-1")
    assert other.job_id != first.job_id
    assert first.body["queue"] == "alerts"


def test_other_workload_kinds_are_not_built() -> None:
    assert build(_Workload(type="RunTrigger"), "default") is None


@pytest.mark.parametrize(
    ("weight", "priority"),
    [
        (5, 5),
        (None, 0),
        (-3, -3),
        (10**12, PRIORITY_MAX),
        (-(10**12), PRIORITY_MIN),
        ("junk", 0),
    ],
)
def test_priority_weight_is_clamped_into_the_api_range(weight: Any, priority: int) -> None:
    assert clamp_priority(weight) == priority


class _Outcomes:
    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.rejected: list[tuple[str, str]] = []
        self.unavailable: list[tuple[list[str], str]] = []

    def submitter(self) -> Submitter:
        return Submitter(
            lambda s: self.accepted.append(s.job_id),
            lambda s, why: self.rejected.append((s.job_id, why)),
            lambda subs, why: self.unavailable.append(([s.job_id for s in subs], why)),
        )


def test_a_huge_priority_weight_is_accepted_by_the_manager(manager_url: str) -> None:
    outcomes = _Outcomes()
    sub = build(_task(str(uuid.uuid4()), weight=10**15), "default")
    assert sub is not None
    with jobbers.Client(manager_url) as client:
        outcomes.submitter().submit(client, [sub])
        assert outcomes.accepted == [sub.job_id]
        assert client.get(sub.job_id)["priority"] == PRIORITY_MAX


def test_a_retried_callback_submit_finds_its_job_instead_of_a_second(manager_url: str) -> None:
    outcomes = _Outcomes()
    first = build(_callback("cb-retried"), "default")
    # The scheduler's second attempt carries a fresh token: another payload, the same id.
    second_body = json.loads(json.dumps(first.body)) if first else {}
    second_body["kwargs"][protocol.WORKLOAD_KWARG]["token"] = "another-token"
    assert first is not None
    second = Submission(first.key, first.job_id, second_body)
    with jobbers.Client(manager_url) as client:
        outcomes.submitter().submit(client, [first])
        outcomes.submitter().submit(client, [second])
        page = client.list_tasks(name=protocol.TASK_NAME, limit=100)
    assert outcomes.accepted == [first.job_id, first.job_id]
    assert [t["id"] for t in page["tasks"]] == [first.job_id]


def test_one_bad_workload_is_rejected_and_the_rest_of_the_batch_accepted(
    manager_url: str,
) -> None:
    outcomes = _Outcomes()
    good = [build(_task(str(uuid.uuid4())), "default") for _ in range(3)]
    batch = [s for s in good if s is not None]
    bad_id = str(uuid.uuid4())
    bad = Submission("bad-key", bad_id, {**batch[0].body, "id": bad_id, "priority": 10**9})
    with jobbers.Client(manager_url) as client:
        outcomes.submitter().submit(client, [batch[0], bad, *batch[1:]])
    assert outcomes.accepted == [s.job_id for s in batch]
    assert [job_id for job_id, _ in outcomes.rejected] == [bad_id]
    assert "Jobbers rejected the workload (422)" in outcomes.rejected[0][1]
    assert outcomes.unavailable == []


def test_an_unreachable_manager_leaves_the_batch_for_later() -> None:
    outcomes = _Outcomes()
    sub = build(_task(str(uuid.uuid4())), "default")
    assert sub is not None
    with jobbers.Client("http://127.0.0.1:9", timeout=1) as client:
        outcomes.submitter().submit(client, [sub])
    assert outcomes.accepted == []
    assert outcomes.rejected == []
    assert outcomes.unavailable[0][0] == [sub.job_id]


# -- job table ----------------------------------------------------------------------------


def test_a_new_job_under_a_key_supersedes_the_old_one() -> None:
    table = JobTable()
    old = Job("job-1", "key", is_task=True)
    table.track(old)
    table.pending_results.add("job-1")
    new = Job("job-2", "key", is_task=True)
    table.track(new)
    assert table.by_key("key") is new
    assert table.by_id("job-1") is None
    assert not table.is_current(old)
    assert table.pending_results == set()
    assert table.untrack("key") is new
    assert len(table) == 0
    assert table.by_id("job-2") is None


def test_a_second_start_makes_a_completion_need_checking() -> None:
    job = Job("j", "k", is_task=True)
    job.started("w1")
    assert (job.worker, job.check_result) == ("w1", False)
    job.started(None)
    assert (job.worker, job.check_result) == ("w1", True)


# -- change feed --------------------------------------------------------------------------


def test_the_feed_reads_from_its_tail_and_pages_up_to_the_cap(manager_url: str) -> None:
    warnings: list[str] = []
    feed = FeedReader(batch_size=2, max_pages=2, warn=lambda _t, m: warnings.append(m))
    with jobbers.Client(manager_url) as client:
        before = build(_task(str(uuid.uuid4())), "default")
        assert before is not None
        client.submit_many([before.body])
        feed.start_at_tail(client)
        subs = [build(_task(str(uuid.uuid4())), "default") for _ in range(5)]
        client.submit_many([s.body for s in subs if s is not None])
        seen: list[str] = []
        assert feed.read(client, lambda e: seen.append(str(e["task_id"]))) == 4
        assert feed.read(client, lambda e: seen.append(str(e["task_id"]))) == 1
        assert feed.read(client, lambda e: seen.append(str(e["task_id"]))) == 0
    assert seen == [s.job_id for s in subs if s is not None]
    assert warnings == []


def test_reading_until_a_job_ends_returns_with_its_end(manager_url: str, tmp_path: Path) -> None:
    """The executor's wait while every slot is taken: long polls that go on through a start
    and return with the end, long before the seconds allowed."""
    feed = FeedReader(batch_size=100, max_pages=2, warn=lambda _t, _m: None, min_interval=60)
    seen: list[tuple[str, str]] = []
    with jobbers.Client(manager_url) as client:
        feed.start_at_tail(client)
        sub = build(_task(str(uuid.uuid4())), "default")
        assert sub is not None
        client.submit_many([sub.body])
        assert feed.read(client, lambda e: None, force=True) == 1  # its submission
        started, ended = threading.Event(), threading.Event()

        def apply(event: dict[str, Any]) -> None:
            seen.append((str(event["task_id"]), str(event["status"])))
            (ended if event["status"] == "completed" else started).set()

        reader = threading.Thread(
            target=feed.read_until, args=(client, apply, ended.is_set, 120.0), daemon=True
        )
        reader.start()
        db = tmp_path / "jobbers.db"
        claimed = asyncio.run(_claim_one(db))
        assert started.wait(timeout=60)  # read, and not done: the reader is back to waiting
        asyncio.run(_complete(db, claimed))
        reader.join(timeout=60)
        assert not reader.is_alive(), "still waiting after the job ended"
    assert seen == [(sub.job_id, "started"), (sub.job_id, "completed")]


async def _claim_one(path: Path) -> TaskRecord:
    """A worker's claim, straight on the Manager's store."""
    store = SQLiteStore(str(path))
    try:
        (claimed,) = await store.claim("unit-worker", ["default"], 1, 60.0)
        return claimed
    finally:
        await store.close()


async def _complete(path: Path, task: TaskRecord) -> None:
    store = SQLiteStore(str(path))
    try:
        await store.finish("unit-worker", [Report(task.id, task.attempt, Outcome("completed"))])
    finally:
        await store.close()


def test_reading_until_gives_up_after_its_seconds_with_nothing_new(manager_url: str) -> None:
    feed = FeedReader(batch_size=100, max_pages=2, warn=lambda _t, _m: None)
    with jobbers.Client(manager_url) as client:
        feed.start_at_tail(client)
        cursor = feed.cursor
        assert feed.read_until(client, lambda e: None, lambda: False, 0.1) == 0
    assert feed.cursor == cursor


def test_reading_until_reads_nothing_when_already_done_and_waits_on_the_first_page_only() -> None:
    feed = FeedReader(batch_size=2, max_pages=3, warn=lambda _t, _m: None, min_interval=60)
    source = _FakeFeed()
    feed.start_at_tail(source)
    assert feed.read_until(source, lambda e: None, lambda: True, 5.0) == 0
    assert source.calls == 0
    source.add(5)
    applied: list[dict[str, Any]] = []
    assert feed.read_until(source, applied.append, lambda: len(applied) >= 5, 5.0) == 5
    assert source.waits[0] > 0
    assert source.waits[1:] == [0.0, 0.0]


def test_a_failed_read_warns_and_keeps_the_cursor() -> None:
    warnings: list[str] = []
    feed = FeedReader(batch_size=10, max_pages=3, warn=lambda _t, m: warnings.append(m))
    feed.cursor = "42"
    with jobbers.Client("http://127.0.0.1:9", timeout=1) as client:
        assert feed.read(client, lambda e: None) == 0
    assert feed.cursor == "42"
    assert "resuming from cursor 42" in warnings[0]


class _FakeFeed:
    """A change feed of numbered events, counting the calls made to it."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.calls = 0
        self.waits: list[float] = []

    def events(  # the FeedClient protocol
        self, after: str | None = None, limit: int = 1000, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls += 1
        self.waits.append(wait)
        start = int(after or 0)
        page = self.log[start : start + limit]
        return page, str(int(after or 0) + len(page))

    def latest_cursor(self) -> str:
        return str(len(self.log))

    def add(self, count: int) -> None:
        self.log += [{"task_id": str(len(self.log) + i)} for i in range(count)]


def test_reads_closer_than_the_interval_are_skipped_unless_forced_or_catching_up() -> None:
    now = [100.0]
    feed = FeedReader(
        batch_size=2, max_pages=2, warn=lambda _t, _m: None, min_interval=1.0, clock=lambda: now[0]
    )
    source = _FakeFeed()
    feed.start_at_tail(source)
    source.add(1)
    assert feed.read(source, lambda e: None) == 1
    source.add(1)
    now[0] += 0.5
    assert feed.read(source, lambda e: None) == 0  # within the interval: not even a call
    assert source.calls == 1
    assert feed.read(source, lambda e: None, force=True) == 1
    source.add(7)
    now[0] += 1.0
    assert feed.read(source, lambda e: None) == 4  # two full pages: a backlog
    now[0] += 0.1
    assert feed.read(source, lambda e: None) == 3  # so the next heartbeat goes on at once
    now[0] += 0.1
    source.add(1)
    assert feed.read(source, lambda e: None) == 0  # caught up: the interval applies again
    now[0] += 1.0
    assert feed.read(source, lambda e: None) == 1


# -- trace context --------------------------------------------------------------------------

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _traced(carrier: Any) -> _Workload:
    workload = _task(str(uuid.uuid4()))
    workload.ti.context_carrier = carrier
    return workload


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ({"traceparent": PARENT, "tracestate": "airflow=1"}, PARENT),
        ({"traceparent": PARENT.upper()}, PARENT),
        ({"traceparent": "not-a-traceparent"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_a_task_instance_carries_its_trace_context(carrier: Any, expected: str | None) -> None:
    sub = build(_traced(carrier), "default")
    assert sub is not None
    assert sub.body.get("traceparent") == expected


def test_a_workload_without_a_carrier_or_a_callback_has_none() -> None:
    plain = build(_task(str(uuid.uuid4())), "default")
    callback = build(_callback("cb-untraced"), "default")
    assert plain is not None
    assert callback is not None
    assert "traceparent" not in plain.body
    assert "traceparent" not in callback.body


def test_the_manager_keeps_the_task_instance_trace_context(manager_url: str) -> None:
    outcomes = _Outcomes()
    sub = build(_traced({"traceparent": PARENT}), "default")
    assert sub is not None
    with jobbers.Client(manager_url) as client:
        outcomes.submitter().submit(client, [sub])
        assert outcomes.accepted == [sub.job_id]
        assert client.get(sub.job_id)["traceparent"] == PARENT
