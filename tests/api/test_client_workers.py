"""Client.workers / AsyncClient.workers: the list of live workers, as GET /workers has it."""

from __future__ import annotations

import time

import httpx
import pytest

from jobbers import AsyncClient
from jobbers.manager import create_app
from jobbers.models import WorkerInfo
from jobbers.store.base import Store

pytestmark = pytest.mark.anyio


async def test_workers_lists_the_registered_workers(store: Store) -> None:
    now = time.time()
    info = WorkerInfo("host:1:ab", "host", ("default", "gpu"), now, now, 0, slots=6)
    await store.register_worker(info, [])
    transport = httpx.ASGITransport(app=create_app(store, token="t"))
    async with AsyncClient("http://jobbers.test", token="t", transport=transport) as client:
        workers = await client.workers()
    assert [(w["id"], w["hostname"], w["queues"], w["slots"]) for w in workers] == [
        ("host:1:ab", "host", ["default", "gpu"], 6)
    ]
