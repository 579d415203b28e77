"""What an operator does to tasks and queues: cancel, dead letter, limits, pause."""

from __future__ import annotations

import time

import httpx
import pytest

from jobbers.models import WorkerInfo
from jobbers.store.base import Store

from .helpers import run_to

pytestmark = pytest.mark.anyio


async def _new(api: httpx.AsyncClient, **extra: object) -> str:
    response = await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}, **extra})
    assert response.status_code == 201
    task_id: str = response.json()["id"]
    return task_id


async def _dead(api: httpx.AsyncClient, store: Store, queue: str = "default") -> str:
    task_id = await _new(api, queue=queue)
    await run_to(store, task_id, "failed", queue=queue)
    assert (await api.get(f"/tasks/{task_id}")).json()["status"] == "dead"
    return task_id


async def test_cancel_a_waiting_task(api: httpx.AsyncClient) -> None:
    task_id = await _new(api)
    response = await api.post(f"/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = await api.post(f"/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


async def test_cancel_a_finished_task_conflicts(api: httpx.AsyncClient, store: Store) -> None:
    task_id = await _new(api)
    await run_to(store, task_id, "completed", result=2)
    response = await api.post(f"/tasks/{task_id}/cancel")
    assert response.status_code == 409
    assert (await api.get(f"/tasks/{task_id}")).json()["status"] == "completed"


async def test_cancel_a_running_task_at_once(api: httpx.AsyncClient, store: Store) -> None:
    task_id = await _new(api)
    await store.claim("w:1:aa", ["default"], 1, lease=30.0)
    task = (await api.post(f"/tasks/{task_id}/cancel")).json()
    assert task["status"] == "cancelled"
    assert (await store.renew("w:1:aa", {task_id: 1}, 30.0)).lost == [task_id]


async def test_cancel_unknown_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.post("/tasks/ghost/cancel")).status_code == 404


async def test_bulk_cancel_sorts_the_ids(api: httpx.AsyncClient, store: Store) -> None:
    waiting = await _new(api)
    done = await _new(api, queue="other")
    await run_to(store, done, "completed", queue="other")
    response = await api.post("/tasks/cancel", json={"task_ids": [waiting, done, "ghost"]})
    assert response.json() == {
        "cancelled": [waiting],
        "not_cancellable": [done],
        "unknown": ["ghost"],
    }


async def test_dead_letter_list_resubmit_delete(api: httpx.AsyncClient, store: Store) -> None:
    first = await _dead(api, store)
    second = await _dead(api, store, queue="other")
    alive = await _new(api, queue="third")

    listed = (await api.get("/dead-letter")).json()
    assert [t["id"] for t in listed["tasks"]] == [second, first]
    assert listed["tasks"][0]["attempts"][0]["error"]["message"] == "boom"
    only_other = (await api.get("/dead-letter", params={"queue": "other"})).json()["tasks"]
    assert [t["id"] for t in only_other] == [second]

    response = await api.post("/dead-letter/resubmit", json={"task_ids": [first, alive, "ghost"]})
    assert response.json() == {"resubmitted": [first], "not_resubmitted": [alive, "ghost"]}
    task = (await api.get(f"/tasks/{first}")).json()
    assert task["status"] == "submitted"

    by_filter = await api.post("/dead-letter/resubmit", json={"filter": {"queue": "other"}})
    assert by_filter.json() == {"resubmitted": [second], "not_resubmitted": []}
    assert (await api.get("/dead-letter")).json()["tasks"] == []

    await run_to(store, second, "failed", queue="other")
    assert (await api.delete(f"/dead-letter/{second}")).json() == {"deleted": [second]}
    assert (await api.get(f"/tasks/{second}")).status_code == 404
    assert (await api.delete(f"/dead-letter/{second}")).status_code == 404
    not_dead = await api.delete(f"/dead-letter/{alive}")
    assert not_dead.status_code == 409
    assert (await api.get(f"/tasks/{alive}")).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"task_ids": ["a"], "filter": {}}, {"task_ids": "a"}, {"filter": {"x": 1}}]
)
async def test_resubmit_needs_ids_or_a_filter(api: httpx.AsyncClient, body: object) -> None:
    assert (await api.post("/dead-letter/resubmit", json=body)).status_code == 422


async def test_queue_limits_and_pause(api: httpx.AsyncClient) -> None:
    await _new(api, queue="mail")
    queue = (await api.put("/queues/mail", json={"concurrency": 3, "paused": True})).json()
    assert queue == {
        "name": "mail",
        "concurrency": 3,
        "rate_limit": None,
        "rate_period": 1.0,
        "paused": True,
        "depth": 1,
        "scheduled": 0,
        "running": 0,
        # No worker serves "mail": none can run what waits there.
        "unrunnable": {"add": 1},
    }
    changed = (await api.put("/queues/mail", json={"rate_limit": 10, "rate_period": 2})).json()
    assert (changed["concurrency"], changed["paused"], changed["rate_limit"]) == (3, True, 10)
    resumed = (await api.put("/queues/mail", json={"paused": False, "concurrency": None})).json()
    assert (resumed["paused"], resumed["concurrency"]) == (False, None)
    queues = (await api.get("/queues")).json()["queues"]
    assert [q["name"] for q in queues] == ["mail"]
    assert queues[0]["rate_limit"] == 10


@pytest.mark.parametrize(
    "body", [{"concurrency": 0}, {"rate_limit": -1}, {"rate_period": 0}, {"paused": "maybe"}]
)
async def test_queue_update_validates(api: httpx.AsyncClient, body: object) -> None:
    assert (await api.put("/queues/mail", json=body)).status_code == 422
    assert (await api.put("/queues/bad%20name", json={})).status_code == 422
    assert (await api.get("/queues")).json()["queues"] == []


async def test_workers_are_listed(api: httpx.AsyncClient, store: Store) -> None:
    now = time.time()
    await store.register_worker(WorkerInfo("h:7:ab", "h", ("default", "x"), now, now, 0), [])
    (worker,) = (await api.get("/workers")).json()["workers"]
    assert (worker["id"], worker["hostname"], worker["queues"]) == ("h:7:ab", "h", ["default", "x"])


async def test_healthz(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
