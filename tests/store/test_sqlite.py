"""What only the SQLite backend has to get right: files shared by processes on one host."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from jobbers.models import NewTask, Status
from jobbers.store import open_store
from jobbers.store.sqlite import SQLiteStore
from jobbers.store.sqlite import steps as sqlite_steps
from jobbers.store.sqlite import store as sqlite
from jobbers.store.sqlite.checkpoint import EVERY_COMMITS
from jobbers.store.sqlite.watch import FileWatch

pytestmark = pytest.mark.anyio


async def test_processes_opening_a_new_file_together_never_see_it_locked(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once with "database is locked" for the loser of
    the race (SQLite skips its busy handler there); workers starting together hit it."""
    for attempt in range(40):
        stores = [open_store(f"sqlite:///{tmp_path}/new-{attempt}.db") for _ in range(6)]
        try:
            answers = await asyncio.gather(*(store.statuses([]) for store in stores))
            assert answers == [{}] * len(stores)
        finally:
            for store in stores:
                await store.close()


def _new(task_id: str) -> NewTask:
    return NewTask(id=task_id, name="add", kwargs={"x": 1, "y": 2})


async def test_a_write_that_must_wait_for_the_lock_leaves_the_loop_free(tmp_path: Path) -> None:
    """Calls run on the loop's thread only when they can start at once: one that finds another
    connection holding the write lock waits on the store's thread, and the loop keeps turning."""
    path = tmp_path / "s.db"
    store = SQLiteStore(str(path), busy_timeout=20)
    try:
        await store.submit([_new("a")])  # the connection is open: later calls may run inline
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        pending = asyncio.create_task(store.submit([_new("b")]))
        for _ in range(100):
            await asyncio.sleep(0)  # the loop turns while the submission waits for the lock
        assert not pending.done()
        other.execute("COMMIT")
        other.close()
        (done,) = await asyncio.wait_for(pending, 20)
        assert done.created
        assert done.task.id == "b"
        assert set(await store.statuses(["a", "b"])) == {"a", "b"}
    finally:
        await store.close()


async def test_the_wal_is_checkpointed_off_the_commit_path(tmp_path: Path) -> None:
    """The committing connection's own checkpoint only starts at BACKSTOP_PAGES; a thread
    copies the WAL into the database file long before."""
    path = tmp_path / "c.db"
    store = SQLiteStore(str(path))
    try:
        await store.statuses([])
        start = path.stat().st_size
        for i in range(EVERY_COMMITS):
            await store.submit([_new(f"t{i}")])
        deadline = time.monotonic() + 20
        while path.stat().st_size == start:
            assert time.monotonic() < deadline, "no checkpoint reached the database file"
            await asyncio.sleep(0.01)
    finally:
        await store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux-only")
async def test_a_write_to_the_file_wakes_the_watch(tmp_path: Path) -> None:
    path = tmp_path / "watched"
    path.write_bytes(b"")
    heard = asyncio.Event()
    watch = FileWatch.start(str(path), asyncio.get_running_loop(), heard.set)
    assert watch is not None
    try:
        with path.open("ab") as f:
            f.write(b"x")
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        watch.close()


async def test_a_commit_landing_just_after_a_read_still_wakes_the_next_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller reads a task (not final yet), another process commits its end before the caller
    starts waiting: the wait must return at once, not sleep until its timeout."""
    path = str(tmp_path / "race.db")
    waiter, writer = SQLiteStore(path), SQLiteStore(path)
    try:
        (done,) = await writer.submit([_new("raced")])
        read = sqlite_steps.load

        def read_then_another_commits(conn: sqlite3.Connection, ids: list[str]) -> object:
            found = read(conn, ids)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("UPDATE tasks SET priority = 1 WHERE id = ?", (done.task.id,))
            other.close()
            return found

        monkeypatch.setattr(sqlite, "load", read_then_another_commits)
        await waiter.get([done.task.id])
        monkeypatch.undo()
        await asyncio.wait_for(waiter.wait_for_change(30.0), 10.0)
    finally:
        await waiter.close()
        await writer.close()


async def test_another_tasks_newer_read_does_not_hide_a_commit_from_a_wait(tmp_path: Path) -> None:
    """A long poll reads, another process commits, then another request on the same store
    reads (and sees the commit): the long poll's wait must still return at once."""
    path = str(tmp_path / "tasks.db")
    waiter, writer = SQLiteStore(path), SQLiteStore(path)
    try:
        (done,) = await writer.submit([_new("seen-by-another")])
        await waiter.get([done.task.id])
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("UPDATE tasks SET priority = 1 WHERE id = ?", (done.task.id,))
        other.close()
        await asyncio.create_task(waiter.get([done.task.id]))
        await asyncio.wait_for(waiter.wait_for_change(30.0), 10.0)
    finally:
        await waiter.close()
        await writer.close()


async def test_a_write_waits_for_another_connections_lock_then_lands(tmp_path: Path) -> None:
    """The store's connections retry the write lock themselves (SQLite's busy handler is off),
    so a write that meets another process's transaction waits for it instead of failing."""
    path = tmp_path / "shared.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.statuses([])
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        submitting = asyncio.create_task(store.submit([NewTask("behind-lock", "t.x", {}, "q")]))
        try:
            # A write the lock keeps out stays pending; it did not fail at once.
            for _ in range(20):
                await asyncio.sleep(0.01)
                assert not submitting.done()
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        await asyncio.wait_for(submitting, 10)
        assert await store.statuses(["behind-lock"]) == {"behind-lock": Status.SUBMITTED}
    finally:
        await store.close()


@pytest.mark.parametrize("inline", [False, True])
async def test_the_change_feed_sees_every_connections_commits(tmp_path: Path, inline: bool) -> None:
    """The feed reads on a connection of its own: what this store and another process commit
    is there at the next read, whichever thread the read runs on."""
    path = str(tmp_path / "feed.db")
    reader, writer = SQLiteStore(path, inline=inline), SQLiteStore(path)
    try:
        await reader.submit([_new("own")])
        start = await reader.latest_event()
        for n in range(3):
            await writer.submit([_new(f"other-{n}")])
            await reader.submit([_new(f"own-{n}")])
            found = await reader.events(start, 10)
            assert [e.task_id for e in found] == [f"other-{n}", f"own-{n}"]
            start = found[-1].cursor
            assert await reader.latest_event() == start
            assert await reader.events(start, 10) == []
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.parametrize("limit", [1, 1000])
async def test_a_feed_read_runs_no_statement_on_the_main_connection(
    tmp_path: Path, limit: int
) -> None:
    """SQLite unmaps a connection's file at its first read after another process's commit, at a
    cost that grows with what the map held: a feed read must not be that read."""
    path = str(tmp_path / "map.db")
    store, other = SQLiteStore(path), SQLiteStore(path)
    try:
        await store.submit([_new("a")])
        await other.submit([_new("b")])
        seen: list[str] = []
        store._connection().set_trace_callback(seen.append)
        assert len(await store.events(None, limit)) == min(limit, 2)
        await store.latest_event()
        assert seen == []
    finally:
        await other.close()
        await store.close()


async def test_an_in_memory_store_reads_its_feed_on_its_only_connection() -> None:
    store = SQLiteStore(":memory:")
    try:
        await store.submit([_new("a")])
        assert [e.task_id for e in await store.events(None, 10)] == ["a"]
        assert await store.latest_event() == "1"
    finally:
        await store.close()
