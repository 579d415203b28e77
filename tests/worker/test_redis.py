"""What only a server store has to get right: Redis going away and coming back, and many
worker processes sharing it. Each test runs its own ``redis-server`` with appendonly on
(fsync on every write), stopped and restarted by pid."""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobbers.manager import create_app
from jobbers.models import Status
from jobbers.store import open_store
from jobbers.store.base import Store, StoreUnavailable

from ..conftest import RedisServer
from .conftest import Spawn
from .support import events, new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

OUTAGE_LINE = "retrying until it answers"
MARK = {"name": "wt.mark", "kwargs": {"log": "/dev/null"}}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store_url(private_redis: RedisServer) -> str:
    return f"{private_redis.url}?prefix=outage&timeout=2"


def kill(server: RedisServer) -> None:
    """SIGKILL: no shutdown save, so only what appendonly already wrote survives."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(5)
    server.proc = None


async def test_submitting_while_redis_is_down_answers_503_quickly(
    store: Store, private_redis: RedisServer
) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as api:
        assert (await api.post("/tasks", json=MARK)).status_code == 201
        kill(private_redis)
        started = time.monotonic()
        for method, path, body in [
            ("POST", "/tasks", MARK),
            ("GET", "/tasks/some-id", None),
            ("GET", "/events", None),
        ]:
            response = await api.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            detail = response.json()["detail"]
            assert "Redis at 127.0.0.1" in detail
            assert "unavailable" in detail
            assert "\n" not in detail
        assert time.monotonic() - started < 5.0
        with pytest.raises(StoreUnavailable):
            await store.check()
        private_redis.start()
        await store.check()
        assert (await api.post("/tasks", json=MARK)).status_code == 201


@pytest.mark.slow
async def test_restarting_redis_mid_run_loses_nothing_accepted_or_finished(
    store: Store, store_url: str, private_redis: RedisServer, spawn: Spawn, log: Path
) -> None:
    worker = spawn(concurrency=4, lease=5.0)
    await worker.registered(store)
    ids = await submit(store, [new_task("wt.mark", seconds=0.02, log=str(log)) for _ in range(300)])

    async def some_done() -> bool:
        return len(events(log, "ran")) >= 60

    await wait_for(some_done, 20, "60 tasks to run")
    late = await submit(store, [new_task("wt.mark", log=str(log)) for _ in range(50)])
    done_before = {t for t, s in (await store.statuses(ids)).items() if s == Status.COMPLETED}
    kill(private_redis)

    async def noticed() -> bool:
        return OUTAGE_LINE in worker.output()

    await wait_for(noticed, 10, "the worker to notice the outage")
    private_redis.start()
    records = await wait_statuses(store, ids + late, {Status.COMPLETED}, 60)
    assert done_before <= set(records)
    assert len(records) == 350
    output = worker.output()
    assert output.count(OUTAGE_LINE) == 1, output
    assert output.count("store answers again") == 1, output
    assert worker.proc.poll() is None
    print(f"{len(done_before)} done before the restart, all 350 after; one outage line")


@pytest.mark.slow
async def test_a_worker_started_while_redis_is_down_starts_when_it_comes_up(
    store_url: str, private_redis: RedisServer, spawn: Spawn, log: Path
) -> None:
    kill(private_redis)
    worker = spawn(concurrency=2)

    async def waiting() -> bool:
        assert worker.proc.poll() is None, worker.output()
        return "waiting up to 60 s for it (--store-wait)" in worker.output()

    await wait_for(waiting, 10, "the worker to wait for Redis")
    private_redis.start()
    store = open_store(store_url)
    try:
        ids = await submit(store, [new_task("wt.mark", log=str(log)) for _ in range(5)])
        await wait_statuses(store, ids, {Status.COMPLETED}, 15)
    finally:
        await store.close()


@pytest.mark.slow
async def test_three_workers_run_ten_thousand_tasks_each_exactly_once(
    store: Store, spawn: Spawn, log: Path
) -> None:
    workers = [spawn(concurrency=20, lease=5.0) for _ in range(3)]
    for worker in workers:
        await worker.registered(store)
    started = time.monotonic()
    ids: list[str] = []
    for _ in range(10):
        ids += await submit(store, [new_task("wt.mark", log=str(log)) for _ in range(1000)])
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 120)
    elapsed = time.monotonic() - started
    ran = collections.Counter(e["id"] for e in events(log, "ran"))
    assert ran == dict.fromkeys(ids, 1)
    by_worker = collections.Counter(r.worker for r in records.values())
    assert len(by_worker) == 3, by_worker
    assert all(len(r.attempts) == 1 for r in records.values())
    print(f"10,000 tasks on 3 workers: {elapsed:.1f} s, split {sorted(by_worker.values())}")


@pytest.mark.slow
async def test_kill_9_of_one_of_three_workers_mid_run_loses_nothing(
    store: Store, spawn: Spawn, log: Path
) -> None:
    """Default task policy: the killed worker's tasks come back (lost leases do not spend
    max_retries) and finish elsewhere; the store records one completion per task."""
    workers = [spawn(concurrency=20, lease=2.0) for _ in range(3)]
    for worker in workers:
        await worker.registered(store)
    ids: list[str] = []
    for _ in range(10):
        ids += await submit(store, [new_task("wt.mark", log=str(log)) for _ in range(1000)])

    async def a_third_done() -> bool:
        return len(events(log, "ran")) >= 3000

    await wait_for(a_third_done, 60, "a third of the tasks to run")
    workers[0].signal(signal.SIGKILL)
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 120)
    assert len(records) == 10_000
    for record in records.values():
        outcomes = [a.outcome for a in record.attempts]
        assert outcomes.count("completed") == 1, (record.id, outcomes)
        assert set(outcomes) <= {"completed", "lease_lost"}, (record.id, outcomes)
        assert record.retries == 0
    lost = [r for r in records.values() if len(r.attempts) > 1]
    assert lost, "the killed worker held no task"
    assert all(r.worker != r.attempts[0].worker for r in lost)
    print(f"kill -9 of one of three workers: {len(lost)} task(s) ran again elsewhere")


async def test_redis_refusing_writes_is_an_outage_not_a_crash(
    store: Store, private_redis: RedisServer
) -> None:
    """Out of memory (maxmemory with noeviction) answers OOM errors: StoreUnavailable."""
    import redis.asyncio as aioredis

    await store.check()
    admin = aioredis.Redis(port=private_redis.port)
    try:
        await admin.config_set("maxmemory", "1")
        with pytest.raises(StoreUnavailable, match="refuses writes: command not allowed"):
            await store.submit([new_task("wt.mark", log="/dev/null")])
        await admin.config_set("maxmemory", "0")
        assert len(await store.submit([new_task("wt.mark", log="/dev/null")])) == 1
    finally:
        await admin.aclose()
