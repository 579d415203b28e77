"""What only the SQLite backend has to get right: files shared by processes on one host."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

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
