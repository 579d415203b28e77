"""What only the SQLite backend has to get right: files shared by processes on one host."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from jobbers.models import NewTask, Status
from jobbers.store import open_store

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
