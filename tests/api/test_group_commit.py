"""Concurrent single submissions share store transactions; each still gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobbers.manager import create_app
from jobbers.models import NewTask
from jobbers.store.base import Submitted
from jobbers.store.sqlite import SQLiteStore

from .helpers import stored_ids

pytestmark = pytest.mark.anyio


class CountingStore(SQLiteStore):
    """The real SQLite store, counting how many submit calls (transactions) it served."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        self.batches.append(len(tasks))
        return await super().submit(tasks, now)


async def _post_all(store: SQLiteStore, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as api:
        return await asyncio.gather(*(api.post("/tasks", json=b) for b in bodies))


async def test_concurrent_submissions_share_transactions(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "g.db"))
    try:
        bodies = [{"name": "add", "kwargs": {"x": i, "y": 0}, "id": f"t-{i}"} for i in range(60)]
        answers = await _post_all(store, bodies)
        assert [a.status_code for a in answers] == [201] * 60
        assert [a.json()["id"] for a in answers] == [f"t-{i}" for i in range(60)]
        assert sorted(await stored_ids(store)) == sorted(f"t-{i}" for i in range(60))
        assert sum(store.batches) == 60
        assert len(store.batches) < 60
    finally:
        await store.close()


async def test_a_conflict_in_a_batch_fails_only_its_own_request(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "g.db"))
    try:
        await store.submit([NewTask("taken", "add", {"x": 0, "y": 0})])
        bodies = [{"name": "add", "kwargs": {"x": i, "y": 0}, "id": f"t-{i}"} for i in range(20)]
        bodies[7] = {"name": "add", "kwargs": {"x": 9, "y": 9}, "id": "taken"}
        bodies[12] = {"name": "add", "kwargs": {"x": 0, "y": 0}, "id": "taken"}
        answers = await _post_all(store, bodies)
        codes = [a.status_code for a in answers]
        assert codes[7] == 409
        assert codes[12] == 200
        assert codes.count(201) == 18
        assert len(await stored_ids(store)) == 19
    finally:
        await store.close()
