"""A worker whose store stops answering logs one line per outage and carries on when it answers
again; a store whose schema changes under it stops the worker instead of looping."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import StoreIncompatible
from jobbers.store.sqlite import SQLiteStore
from jobbers.worker import Worker, WorkerSettings, loop

from .support import new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

SETTINGS = WorkerSettings(concurrency=2, lease=1.0, poll_cap=0.05, maintenance_interval=0.05)


def store_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "store" in r.getMessage()]


async def test_an_outage_is_logged_once_and_the_worker_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, log: Path
) -> None:
    path = tmp_path / "outage.db"
    # A short busy timeout turns another process's long write lock into a real outage.
    store = SQLiteStore(str(path), busy_timeout=0.02)
    client = SQLiteStore(str(path))
    worker = Worker(store, SETTINGS)
    caplog.set_level(logging.INFO, logger="jobbers")
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: _registered(client), 5, "the worker to register")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            await wait_for(
                lambda: _true(any("store unavailable" in m for m in store_lines(caplog))),
                5,
                "the outage to be logged",
            )
            await wait_for(
                lambda: _true(worker.outage.failures >= 20),
                10,
                "claims, renewals and maintenance passes to fail many times",
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        ids = await submit(client, [new_task("wt.mark", log=str(log))])
        await wait_statuses(client, ids, {Status.COMPLETED}, 5)
        await wait_for(
            lambda: _true(any("answers again" in m for m in store_lines(caplog))),
            5,
            "the recovery to be logged",
        )
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 10)
        await client.close()
        await store.close()
    lines = store_lines(caplog)
    assert sum("store unavailable" in m for m in lines) == 1, lines
    assert sum("answers again" in m for m in lines) == 1, lines
    assert not [r for r in caplog.records if r.exc_info], "an outage logs no traceback"


async def test_a_schema_changed_under_a_running_worker_stops_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "changed.db"
    store = SQLiteStore(str(path))
    worker = Worker(store, SETTINGS)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: _registered(store), 5, "the worker to register")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("ALTER TABLE tasks RENAME TO tasks_from_another_version")
        other.close()
        with pytest.raises(StoreIncompatible, match="does not hold the schema"):
            await asyncio.wait_for(running, 10)
    finally:
        if not running.done():
            running.cancel()
        await store.close()


async def _registered(store: SQLiteStore) -> bool:
    return bool(await store.workers())


async def _true(value: bool) -> bool:
    return value


async def test_a_worker_asked_to_stop_stops_even_when_its_outcomes_cannot_be_stored(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report flusher keeps outcomes while the store is unavailable, so a stop during an
    outage would wait for the store forever; the steps after the grace are bounded instead, and
    the unstored outcome's task is reaped and runs again."""
    monkeypatch.setattr(loop, "CLEANUP_BOUND", 1.0)
    path = tmp_path / "stuck.db"
    store = SQLiteStore(str(path), busy_timeout=0.02)
    client = SQLiteStore(str(path))
    worker = Worker(store, SETTINGS)
    caplog.set_level(logging.INFO, logger="jobbers")
    running = asyncio.create_task(worker.run())
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        await wait_for(lambda: _registered(client), 5, "the worker to register")
        ids = await submit(client, [new_task("wt.mark", log=str(log), seconds=0.5)])
        await wait_statuses(client, ids, {Status.STARTED}, 5)
        blocker.execute("BEGIN EXCLUSIVE")  # the outcome cannot be stored from here on
        worker.request_stop()
        await asyncio.wait_for(running, 10)
        stuck = [r.getMessage() for r in caplog.records if "took over" in r.getMessage()]
        assert len(stuck) == 1
        assert "'storing outcomes'" in stuck[0]
        helpers = {"jobbers-leases", "jobbers-maintenance", "jobbers-notes", "jobbers-reports"}
        alive = [t.get_name() for t in asyncio.all_tasks() if t.get_name() in helpers]
        assert alive == [], f"a stopped worker's helpers still run: {alive}"
        # Whatever the stopped worker's store was still doing ends, failing, before the lock
        # is released: only then can nothing but this test reap the task.
        await store.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        if not running.done():
            running.cancel()
    try:
        assert (await client.statuses(ids))[ids[0]] is Status.STARTED
        reaped = await client.reap(now=time.time() + SETTINGS.lease + 1)
        assert reaped.reaped == 1
        assert (await client.statuses(ids))[ids[0]] is not Status.STARTED
    finally:
        await client.close()
        await store.close()
