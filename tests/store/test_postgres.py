"""What only the PostgreSQL store has: its schema and migrations, its wake-ups, and a change feed
whose cursor no concurrent commit can skip."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from jobbers.ids import uuid7
from jobbers.models import NewTask, Outcome, RetryPolicy, Status
from jobbers.store import open_store
from jobbers.store.base import ANY_TASK, Report, Store, StoreIncompatible, StoreUnreachable
from jobbers.store.postgres.schema import SCHEMA_VERSION
from jobbers.store.postgres.store import PostgresStore

from ..worker.support import wait_for

pytestmark = pytest.mark.anyio


def task() -> NewTask:
    return NewTask(id=uuid7(), name="t.add", queue="default", kwargs={}, policy=RetryPolicy())


@pytest.fixture
async def schema_url(postgres_database: str) -> AsyncIterator[str]:
    """A store URL on a schema nobody has used yet; dropped after the test."""
    schema = f"pg{uuid.uuid4().hex[:12]}"
    yield f"{postgres_database}?schema={schema}"
    conn = await asyncpg.connect(postgres_database)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def _sql(url: str, sql: str) -> object:
    database, _, query = url.partition("?schema=")
    conn = await asyncpg.connect(database, server_settings={"search_path": query or "public"})
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_stores_starting_at_once_build_the_schema_once(schema_url: str) -> None:
    """Each start-up migrates under an advisory lock: without it, the racing CREATE TABLEs fail."""
    stores = [open_store(schema_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.check() for s in stores))
        assert await _sql(schema_url, "SELECT value FROM meta WHERE key = 'schema'") == str(
            SCHEMA_VERSION
        )
        [made] = await stores[0].submit([task()])
        assert (await stores[3].get([made.task.id]))[made.task.id].name == "t.add"
    finally:
        for store in stores:
            await store.close()


async def test_the_tables_live_in_their_own_schema(schema_url: str, postgres_database: str) -> None:
    store = open_store(schema_url)
    try:
        await store.check()
    finally:
        await store.close()
    schema = schema_url.rpartition("=")[2]
    assert await _sql(schema_url, "SELECT to_regclass('tasks')::text") == "tasks"
    found = await _sql(
        postgres_database,
        f"SELECT count(*) FROM pg_tables WHERE tablename = 'tasks' AND schemaname = '{schema}'",
    )
    assert found == 1
    assert await _sql(postgres_database, "SELECT to_regclass('public.tasks')::text") is None


async def test_a_newer_schema_is_refused_in_one_line(schema_url: str) -> None:
    first = open_store(schema_url)
    await first.check()
    await first.close()
    await _sql(schema_url, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}'")
    later = open_store(schema_url)
    try:
        with pytest.raises(StoreIncompatible) as refused:
            await later.check()
    finally:
        await later.close()
    message = str(refused.value)
    assert "\n" not in message
    assert f"store schema version {SCHEMA_VERSION + 1}" in message


async def test_a_schema_holding_other_tables_is_refused(schema_url: str) -> None:
    schema = schema_url.rpartition("=")[2]
    await _sql(schema_url, f"CREATE SCHEMA {schema}")
    await _sql(schema_url, f"CREATE TABLE {schema}.dag_run (id int)")
    store = open_store(schema_url)
    try:
        with pytest.raises(StoreIncompatible, match="not a Jobbers store"):
            await store.check()
    finally:
        await store.close()


async def test_notify_wakes_a_waiting_worker_for_new_work_and_cancellations(
    schema_url: str,
) -> None:
    worker, api = open_store(schema_url), open_store(schema_url)
    try:
        await worker.check()
        await worker.wait_for_change(0.05)  # starts listening
        started = time.monotonic()
        waiting = asyncio.create_task(worker.wait_for_change(30))
        await asyncio.sleep(0)
        [made] = await api.submit([task()])
        await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - started < 10
        # Listening has begun: its first answer says to renew, as anything before may be missed.
        assert await worker.wait_for_cancel(10) == [ANY_TASK]

        [claimed] = await worker.claim("w1", ["default"], 1, 30.0)
        heard = asyncio.create_task(worker.wait_for_cancel(30))
        await asyncio.sleep(0)
        await api.cancel([claimed.id])
        assert await asyncio.wait_for(heard, 10) == [made.task.id]
    finally:
        await worker.close()
        await api.close()


async def test_a_cancellation_before_listening_or_during_a_relisten_still_reaches_the_worker(
    schema_url: str,
) -> None:
    """Cancels announced while the worker was not listening (before it began, or while its
    connection was down) are not heard: after each LISTEN the next answer says to renew at once,
    and the renewal reports the cancelled task."""
    other, worker = open_store(schema_url), open_store(schema_url)
    assert isinstance(worker, PostgresStore)
    try:
        first, second = task(), task()
        await other.submit([first, second])
        await other.claim("w", ["default"], 2, 60.0)
        await other.cancel([first.id])
        assert ANY_TASK in await asyncio.wait_for(worker.wait_for_cancel(10), 15)
        assert (await worker.renew("w", {first.id: 1, second.id: 1}, 60.0)).lost == [first.id]
        listener = worker._listener
        assert listener is not None
        await _sql(schema_url, f"SELECT pg_terminate_backend({listener.get_server_pid()})")
        await other.cancel([second.id])

        async def told_to_renew() -> bool:
            return ANY_TASK in await worker.wait_for_cancel(0.2)

        await wait_for(told_to_renew, 15, "the worker to be told to renew after re-listening")
        assert (await worker.renew("w", {second.id: 1}, 60.0)).lost == [second.id]
    finally:
        await other.close()
        await worker.close()


async def test_the_change_feed_never_skips_an_event_under_concurrent_writers(
    schema_url: str,
) -> None:
    """Eight submitters and two workers commit concurrently while a reader follows the feed by
    cursor; it must read every event the feed holds at the end. A cursor that a commit of a
    smaller sequence number could land behind loses events here."""
    stores: list[Store] = [open_store(schema_url) for _ in range(11)]
    submitters, workers, reader = stores[:8], stores[8:10], stores[10]
    await reader.check()
    per_submitter = 120
    submitted: list[str] = []
    finished = asyncio.Event()

    async def submit(store: Store) -> None:
        for _ in range(per_submitter):
            [made] = await store.submit([task()])
            submitted.append(made.task.id)

    async def work(store: Store, name: str) -> None:
        while not finished.is_set():
            claimed = await store.claim(name, ["default"], 8, 30.0)
            if claimed:
                await store.finish(
                    name, [Report(t.id, 1, Outcome("completed", result=1)) for t in claimed]
                )
            else:
                await store.wait_for_change(0.05)

    seen: list[int] = []

    async def follow() -> None:
        cursor = "0"
        while True:
            batch = await reader.events(cursor, 500)
            seen.extend(int(e.cursor) for e in batch)
            if batch:
                cursor = batch[-1].cursor
            elif finished.is_set():
                return
            else:
                await asyncio.sleep(0.001)

    try:
        following = asyncio.create_task(follow())
        working = [asyncio.create_task(work(s, f"w{i}")) for i, s in enumerate(workers)]
        await asyncio.wait_for(asyncio.gather(*(submit(s) for s in submitters)), 80)

        async def all_done() -> bool:
            found = await reader.statuses(submitted)
            return len(found) == len(submitted) and all(
                s == Status.COMPLETED for s in found.values()
            )

        await wait_for(all_done, 60, "every task to complete", step=0.05)
        finished.set()
        await asyncio.wait_for(asyncio.gather(following, *working), 30)
        everything = [int(e.cursor) for e in await reader.events("0", 100_000)]
        # submitted, started, completed for each task
        assert len(everything) == 3 * len(submitted) == 3 * 8 * per_submitter
        assert seen == everything
    finally:
        finished.set()
        for store in stores:
            await store.close()


async def test_a_cancel_of_hundreds_of_running_tasks_is_heard_whole(schema_url: str) -> None:
    """One notification carries at most 8,000 bytes: a long list goes in several."""
    worker, api = open_store(schema_url), open_store(schema_url)
    try:
        await worker.check()
        tasks = [task() for _ in range(400)]
        await api.submit(tasks)
        claimed = await worker.claim("w1", ["default"], 400, 30.0)
        assert len(claimed) == 400
        await worker.wait_for_cancel(0.05)  # starts listening
        await api.cancel([t.id for t in tasks])
        heard: set[str] = set()

        async def all_heard() -> bool:
            heard.update(set(await worker.wait_for_cancel(0.2)) - {ANY_TASK})
            return len(heard) == 400

        await wait_for(all_heard, 10, "every cancellation to be heard")
        assert heard == {t.id for t in tasks}
    finally:
        await worker.close()
        await api.close()


def test_a_password_in_a_store_url_is_never_shown() -> None:
    from jobbers.store import shown

    assert shown("postgresql://airflow:hunter2@db:5432/airflow?schema=jobbers") == (
        "postgresql://airflow:***@db:5432/airflow?schema=jobbers"
    )
    assert shown("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert shown("sqlite:///jobbers.db") == "sqlite:///jobbers.db"


def test_a_connection_left_mid_operation_by_a_server_restart_is_unreachable() -> None:
    """asyncpg reports a connection the server dropped during a restart, reused before it
    noticed, as an internal client error: a caller must see it as the store being away (and
    retry), not as a bug."""
    store = PostgresStore("postgresql://postgres@127.0.0.1:5432/jobbers")
    lost = asyncpg.InternalClientError(
        "cannot switch to state 12; another operation is in progress"
    )
    with pytest.raises(StoreUnreachable, match="is unavailable"), store._reachable():
        raise lost


async def test_calls_starting_together_open_one_pool(schema_url: str) -> None:
    store = open_store(schema_url)
    try:
        await asyncio.gather(*(store.statuses(["x"]) for _ in range(8)))
        pools = await _sql(
            schema_url,
            "SELECT count(DISTINCT client_port) FROM pg_stat_activity"
            " WHERE application_name = 'jobbers' AND datname = current_database()",
        )
        assert isinstance(pools, int)
        assert pools <= 4  # one pool of at most 4 connections, not one per call
    finally:
        await store.close()


async def test_a_batch_appends_its_totals_once_per_key_not_once_per_task(schema_url: str) -> None:
    """A batch of 50 submissions, a claim of them and a finish of them each append one delta row
    per (queue, name, total), however many tasks moved: the totals cost a batch one insert."""
    store = open_store(schema_url)
    try:
        tasks = [task() for _ in range(50)]
        await store.submit(tasks, now=1000.0)
        claimed = await store.claim("w1", ["default"], 50, 30.0, now=1001.0)
        assert len(claimed) == 50
        await store.finish(
            "w1", [Report(t.id, 1, Outcome("completed", result=1)) for t in claimed], now=1003.0
        )
        deltas = await _sql(schema_url, "SELECT COUNT(*) FROM task_total_deltas")
        # submitted; started, wait slot, wait sum; finished:completed, run slot, run sum
        assert deltas == 7
        totals = (await store.counts(since=1000.0)).totals
        assert totals == {
            ("default", "t.add", "submitted"): 50,
            ("default", "t.add", "started"): 50,
            ("default", "t.add", "finished:completed"): 50,
        }
        assert await _sql(schema_url, "SELECT COUNT(*) FROM task_total_deltas") == 0
        assert await _sql(
            schema_url, "SELECT SUM(n) FROM task_totals WHERE total = 'wait:sum'"
        ) == (50.0)
    finally:
        await store.close()


async def test_every_connection_names_itself_the_listening_one_too(schema_url: str) -> None:
    """In a database shared with Airflow, ``application_name`` is how an operator counts
    Jobbers' connections against ``max_connections``: an unnamed one would hide among
    Airflow's."""
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    store = open_store(schema_url)
    try:
        await store.check()
        await store.wait_for_change(0.01)  # starts listening

        async def pool_and_listener() -> bool:
            found = await _sql(schema_url, others)
            return isinstance(found, int) and found >= 2

        await wait_for(pool_and_listener, 10, "the listening connection")
        assert await _sql(schema_url, others + " AND application_name <> 'jobbers'") == 0
    finally:
        await store.close()
