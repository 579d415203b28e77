"""Long polls: GET /tasks/{id}/wait answers when the task ends, whoever ends it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jobbers import AsyncClient
from jobbers.manager import create_app
from jobbers.models import Outcome
from jobbers.store.base import Report, Store

from ..conftest import StoreFactory
from .helpers import WORKER, run_to

pytestmark = pytest.mark.anyio

ADD = {"name": "add", "kwargs": {"x": 1, "y": 2}}


async def test_wait_answers_when_another_process_finishes_the_task(
    api: httpx.AsyncClient, make_store: StoreFactory
) -> None:
    """The second store stands for a worker: its commits reach the Manager only through the
    store, as a worker process's would."""
    ids = [(await api.post("/tasks", json=ADD)).json()["id"] for _ in range(3)]
    waits = [asyncio.create_task(api.get(f"/tasks/{i}/wait", params={"timeout": 30})) for i in ids]
    await asyncio.sleep(0)
    worker_side = make_store()
    claimed = {t.id: t.attempt for t in await worker_side.claim(WORKER, ["default"], 9, 30.0)}
    for number, task_id in enumerate(ids):
        report = Report(task_id, claimed[task_id], Outcome("completed", result=number))
        await worker_side.finish(WORKER, [report])
        async with asyncio.timeout(20):
            answer = await waits[number]
        assert answer.status_code == 200
        assert (answer.json()["status"], answer.json()["result"]) == ("completed", number)
        assert not any(w.done() for w in waits[number + 1 :])


async def test_wait_on_a_final_task_answers_at_once(api: httpx.AsyncClient, store: Store) -> None:
    task_id = (await api.post("/tasks", json=ADD)).json()["id"]
    await run_to(store, task_id, "failed")
    answer = await api.get(f"/tasks/{task_id}/wait", params={"timeout": 60})
    assert answer.json()["status"] in ("failed", "dead")


async def test_wait_times_out_with_the_task_as_it_stands(api: httpx.AsyncClient) -> None:
    task_id = (await api.post("/tasks", json=ADD)).json()["id"]
    answer = await api.get(f"/tasks/{task_id}/wait", params={"timeout": 0.05})
    assert (answer.status_code, answer.json()["status"]) == (200, "submitted")


async def test_wait_on_an_unknown_task_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/tasks/ghost/wait", params={"timeout": 0})).status_code == 404


@pytest.mark.parametrize("timeout", ["61", "-1", "nan", "soon"])
async def test_wait_timeout_is_bounded(api: httpx.AsyncClient, timeout: str) -> None:
    task_id = (await api.post("/tasks", json=ADD)).json()["id"]
    answer = await api.get(f"/tasks/{task_id}/wait", params={"timeout": timeout})
    assert answer.status_code == 422


async def test_client_wait_returns_once_the_task_ends(store: Store) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        task = await client.submit("add", {"x": 1, "y": 2})
        waiting = asyncio.create_task(client.wait(task["id"], timeout=30))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await run_to(store, task["id"], "completed", result=3)
        async with asyncio.timeout(20):
            done = await waiting
    assert (done["status"], done["result"]) == ("completed", 3)
