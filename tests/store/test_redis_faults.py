"""Redis that forgets or stalls: workers put back what it forgot, calls fail within the URL's
timeout while it stalls (every Manager route answers 503), and no call whose answer was lost is
sent again (a claim sent twice takes tasks that nobody runs until their lease ends)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from jobbers.manager import create_app
from jobbers.models import NewTask, Status
from jobbers.store import open_store
from jobbers.store.base import Store, StoreUnavailable
from jobbers.worker import Worker, WorkerSettings

from ..conftest import RedisServer, spare_port
from ..worker.support import new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0
#: What a call may take past the timeout: the event loop's and the machine's own delays.
SLACK = 0.5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop, pause and empty."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


async def test_workers_put_back_what_a_redis_restarted_empty_forgot(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = WorkerSettings(lease=1.0, poll_cap=0.05, maintenance_interval=0.1)
    store = open_store(own_redis.url)
    client = open_store(own_redis.url)
    worker = Worker(store, settings)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: _listed(client, worker.id), 5, "the worker to register")
        # No persistence: it comes back empty. (In a thread: the processes' event loop runs on.)
        await asyncio.to_thread(own_redis.stop)
        await asyncio.to_thread(own_redis.start)
        assert await client.workers() == []
        assert await client.task_definitions() == {}
        took = await wait_for(lambda: _listed(client, worker.id), 5, "the worker to come back")
        assert took <= settings.lease + SLACK
        assert "wt.mark" in await client.task_definitions()
        ids = await submit(client, [new_task("wt.mark", log=str(tmp_path / "log"))])
        await wait_statuses(client, ids, {Status.COMPLETED}, 10)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)
        await store.close()
        await client.close()


async def _listed(store: Store, worker_id: str) -> bool:
    return worker_id in {w.id for w in await store.workers()}


async def test_while_redis_stalls_every_call_and_route_fails_within_the_timeout(
    own_redis: RedisServer,
) -> None:
    assert own_redis.proc is not None
    store = open_store(f"{own_redis.url}?timeout={TIMEOUT}")
    await store.check()
    transport = httpx.ASGITransport(app=create_app(store))
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        calls = {
            "check": store.check(),
            "get": store.get(["x"]),
            "submit": store.submit([new_task("wt.mark", log="-")]),
            "claim": store.claim("w", ["default"], 1, 30.0),
            "workers": store.workers(),
        }
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await call
            assert time.monotonic() - started < TIMEOUT + SLACK, name
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as api:
            for method, route in [
                ("GET", "/healthz"),
                ("GET", "/tasks"),
                ("GET", "/tasks/x"),
                ("GET", "/workers"),
                ("GET", "/queues"),
                ("POST", "/tasks/x/cancel"),
            ]:
                started = time.monotonic()
                answer = await api.request(method, route)
                assert answer.status_code == 503, (route, answer.text)
                assert time.monotonic() - started < TIMEOUT + SLACK, route
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
        await store.close()


async def test_a_claim_whose_answer_was_lost_is_not_sent_again_and_its_tasks_come_back(
    own_redis: RedisServer,
) -> None:
    """A claim that ran while its answer was lost started a task nobody runs: the worker's next
    claim returns it (same attempt), so it neither waits a whole lease nor spends ``max_lost``."""
    assert own_redis.proc is not None
    store = open_store(f"{own_redis.url}?timeout={TIMEOUT}")
    client = open_store(own_redis.url)
    try:
        ids = await submit(client, [new_task("wt.mark", log="-") for _ in range(4)])
        assert await store.claim("w", ["elsewhere"], 1, 30.0) == []  # the script is loaded
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable):
                await store.claim("w", ["default"], 1, 30.0)
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        # Whatever Redis received runs once it resumes; only then is the count final.
        await client.check()
        started = [t for t, s in (await client.statuses(ids)).items() if s is Status.STARTED]
        assert len(started) == 1, f"the claim ran {len(started)} times"
        again = await store.claim("w", ["default"], 1, 30.0)
        assert [(r.id, r.attempt) for r in again] == [(started[0], 1)]
        other = await store.claim("w", ["default"], 1, 30.0)
        assert [r.id for r in other] != [started[0]], "taken back once, not on every claim"
    finally:
        await store.close()
        await client.close()


async def test_a_submission_is_answered_once_the_replicas_the_url_asks_for_have_it(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """``?wait_replicas=1``: a submission that reached no replica is refused as unavailable (a
    failover could lose it), and accepted once a replica follows the primary."""
    lonely = open_store(f"{own_redis.url}?wait_replicas=1&timeout={TIMEOUT}")
    try:
        with pytest.raises(StoreUnavailable, match="reached 0 of 1 replica"):
            await lonely.submit([new_task("wt.mark", log="-")])
    finally:
        await lonely.close()
    replica = RedisServer(tmp_path / "replica")
    (tmp_path / "replica").mkdir()
    replica.start()
    try:
        raw = redis.Redis(port=replica.port)
        raw.replicaof("127.0.0.1", own_redis.port)
        deadline = time.monotonic() + 10
        while raw.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never caught up"
            await asyncio.sleep(0.05)
        raw.close()
        # A replica that just caught up may take a moment on a busy machine: a longer WAIT.
        store = open_store(f"{own_redis.url}?wait_replicas=1&timeout={5 * TIMEOUT}")
        try:
            [done] = await store.submit([new_task("wt.mark", log="-")])
            assert done.created
        finally:
            await store.close()
    finally:
        replica.stop()


async def test_a_replicated_write_to_a_node_that_became_a_replica_is_unavailable(
    own_redis: RedisServer,
) -> None:
    """In a failover the old primary can come back as a replica that still takes the script
    (replica-read-only off) but refuses WAIT: the answer is 503's error (send it again), not 500."""
    raw = redis.Redis.from_url(own_redis.url)
    raw.config_set("replica-read-only", "no")
    raw.replicaof("127.0.0.1", str(spare_port()))
    store = open_store(f"{own_redis.url}?wait_replicas=1")
    try:
        with pytest.raises(StoreUnavailable, match=r"refuses writes: .*WAIT"):
            await store.submit([NewTask("r1", "t.add", {})])
    finally:
        await store.close()
        raw.replicaof("NO", "ONE")
        raw.close()
