"""What operators read and act on, against the app in-process: the AsyncClient's queue, worker
and dead letter calls, and one task's progress and log lines."""

from __future__ import annotations

import time

import httpx
import pytest

from jobbers import AsyncClient
from jobbers.manager import create_app
from jobbers.models import WorkerInfo
from jobbers.store.base import AttemptNotes, LogLine, Store

from .helpers import run_to

pytestmark = pytest.mark.anyio


async def test_queues_workers_and_dead_letter(store: Store) -> None:
    now = time.time()
    await store.register_worker(WorkerInfo("w-1", "host", ("mail",), now, now, 0), [])
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        dead = []
        for queue in ("mail", "mail", "sms"):
            task = await client.submit("add", {"x": 1, "y": 2}, queue=queue)
            await run_to(store, task["id"], "failed", queue=queue)
            dead.append(task["id"])
        alive = (await client.submit("add", {"x": 1, "y": 2}, queue="mail"))["id"]

        queues = {q["name"]: q for q in await client.queues()}
        assert queues["mail"]["depth"] == 1
        assert [w["id"] for w in await client.workers()] == ["w-1"]

        first = await client.dead_letter(limit=2)
        assert [t["id"] for t in first["tasks"]] == [dead[2], dead[1]]
        rest = await client.dead_letter(limit=2, cursor=first["cursor"])
        assert [t["id"] for t in rest["tasks"]] == [dead[0]]
        only_sms = await client.dead_letter(queue="sms", name="add")
        assert [t["id"] for t in only_sms["tasks"]] == [dead[2]]

        assert await client.resubmit([dead[0], alive]) == {
            "resubmitted": [dead[0]],
            "not_resubmitted": [alive],
        }
        assert await client.delete_dead([dead[1], dead[2], alive, "ghost"]) == {
            "deleted": [dead[1], dead[2]],
            "not_deleted": [alive, "ghost"],
        }
        assert (await client.dead_letter())["tasks"] == []
        assert set(await store.statuses([*dead, alive])) == {dead[0], alive}


async def test_bulk_delete_leaves_other_statuses(api: httpx.AsyncClient, store: Store) -> None:
    task_id = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()[
        "id"
    ]
    response = await api.post("/dead-letter/delete", json={"task_ids": [task_id, task_id]})
    assert response.status_code == 200
    assert response.json() == {"deleted": [], "not_deleted": [task_id]}
    assert task_id in await store.statuses([task_id])
    assert (await api.post("/dead-letter/delete", json={"ids": [task_id]})).status_code == 422


async def test_one_task_shows_its_attempts_progress_and_lines(
    api: httpx.AsyncClient, store: Store
) -> None:
    task_id = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()[
        "id"
    ]
    assert (await api.get(f"/tasks/{task_id}")).json()["progress"] is None
    await store.claim("w", ["default"], 1, lease=30.0)
    line = LogLine(1_800_000_000.0, "INFO", "fetched 10 rows")
    await store.add_notes("w", [AttemptNotes(task_id, 1, 0.25, "fetching", (line,))])
    body = (await api.get(f"/tasks/{task_id}")).json()
    assert body["progress"] == {"fraction": 0.25, "message": "fetching"}
    (attempt,) = body["attempts"]
    assert attempt["progress"] == body["progress"]
    assert attempt["logs"] == [
        {"at": "2027-01-15T08:00:00+00:00", "level": "INFO", "message": "fetched 10 rows"}
    ]
    listed = (await api.get("/tasks")).json()["tasks"]
    assert "logs" not in listed[0]["attempts"][0]
