"""An integer past 64 bits is kept exact from the request to the task's code and back; it never
turns into a float on the way (an ``int`` parameter would take the float's rounded value)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from jobbers.models import Status
from jobbers.registry import task
from jobbers.store.base import Store
from jobbers.worker import Worker, WorkerSettings

from ..worker.support import wait_statuses

pytestmark = pytest.mark.anyio

BIG = 18446744073709551617  # 2**64 + 1: twenty digits
HUGE = 12345678901234567890123456789


@task(name="tbig.double")
def double(n: int) -> int:
    if type(n) is not int:
        raise TypeError(f"got {type(n).__name__}")
    return 2 * n


@pytest.mark.parametrize("number", [BIG, -BIG, HUGE])
@pytest.mark.parametrize("route", ["/tasks", "/tasks/bulk"])
async def test_a_big_integer_is_kept_exact_through_store_worker_and_answers(
    api: httpx.AsyncClient, store: Store, route: str, number: int
) -> None:
    one = f'{{"name": "tbig.double", "kwargs": {{"n": {number}}}}}'
    body = one if route == "/tasks" else f'{{"tasks": [{one}]}}'
    answer = await api.post(route, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 201, answer.text
    sent = json.loads(answer.text)
    record = sent if route == "/tasks" else sent["tasks"][0]
    assert record["kwargs"] == {"n": number}
    stored = (await store.get([record["id"]]))[record["id"]]
    assert stored.kwargs["n"] == number
    assert type(stored.kwargs["n"]) is int

    worker = Worker(store, WorkerSettings(poll_cap=0.05, maintenance_interval=0.5))
    running = asyncio.create_task(worker.run())
    try:
        await wait_statuses(store, [record["id"]], {Status.COMPLETED, Status.FAILED}, 10)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 10)
    read = await api.get(f"/tasks/{record['id']}")
    assert json.loads(read.text)["status"] == "completed", read.text
    assert json.loads(read.text)["result"] == 2 * number
