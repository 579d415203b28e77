"""/metrics: Prometheus text that parses, with numbers that match what the tasks did."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobbers.models import WorkerInfo
from jobbers.store.base import Store

from .conftest import TOKEN, asgi_client
from .helpers import run_to

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_match_the_tasks_run(store: Store) -> None:
    now = time.time()
    await store.register_worker(WorkerInfo("w-1", "host", ("default",), now, now, 0), [])
    async with asgi_client(store, token=TOKEN) as api:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await api.get("/metrics")).status_code == 401
        ids = []
        for kind in ("completed", "completed", "completed", "failed"):
            task_id = (
                await api.post(
                    "/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}}, headers=auth
                )
            ).json()["id"]
            await run_to(store, task_id, kind)
            ids.append(task_id)
        await api.post(
            "/tasks",
            json={"name": "add", "kwargs": {"x": 1, "y": 2}, "queue": "idle"},
            headers=auth,
        )
        await api.put("/queues/idle", json={"paused": True}, headers=auth)
        response = await api.get("/metrics", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    task = (("name", "add"), ("queue", "default"))
    assert got[("jobbers_tasks_finished_total", (*task, ("status", "completed")))] == 3
    assert got[("jobbers_tasks_finished_total", (*task, ("status", "failed")))] == 1
    assert got[("jobbers_tasks_dead_lettered_total", task)] == 1
    assert got[("jobbers_tasks_submitted_total", task)] == 4
    assert got[("jobbers_tasks_started_total", task)] == 4
    assert (
        got[("jobbers_tasks", (("name", "add"), ("queue", "idle"), ("status", "submitted")))] == 1
    )
    assert got[("jobbers_dead_letters", (("queue", "default"),))] == 1
    assert got[("jobbers_task_retries_total", task)] == 0
    assert got[("jobbers_queue_depth", (("queue", "idle"),))] == 1
    assert got[("jobbers_queue_paused", (("queue", "idle"),))] == 1
    assert got[("jobbers_queue_oldest_ready_age_seconds", (("queue", "idle"),))] >= 0
    assert got[("jobbers_task_run_seconds_count", task)] == 4
    assert got[("jobbers_task_queue_wait_seconds_count", task)] == 4
    assert got[("jobbers_task_run_seconds_bucket", (("le", "+Inf"), *task))] == 4
    assert got[("jobbers_workers_alive", ())] == 1
    worker = (("hostname", "host"), ("worker", "w-1"))
    assert got[("jobbers_worker_slots", worker)] == 0
    assert got[("jobbers_worker_running", worker)] == 0
    assert got[("jobbers_worker_last_seen_timestamp_seconds", worker)] == pytest.approx(now)


async def test_finished_total_does_not_fall_when_tasks_are_pruned(
    api: httpx.AsyncClient, store: Store
) -> None:
    for kind in ("completed", "completed", "failed"):
        task_id = (
            await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})
        ).json()["id"]
        await run_to(store, task_id, kind)
    task = (("name", "add"), ("queue", "default"))
    completed = ("jobbers_tasks_finished_total", (*task, ("status", "completed")))
    failed = ("jobbers_tasks_finished_total", (*task, ("status", "failed")))
    kept = ("jobbers_tasks", (*task, ("status", "completed")))
    before = samples((await api.get("/metrics")).text)
    assert (before[completed], before[failed], before[kept]) == (2, 1, 2)
    assert await store.prune(before=time.time() + 1) == 3
    after = samples((await api.get("/metrics")).text)
    assert kept not in after
    totals = [k for k in before if k[0].endswith("_total")]
    assert totals
    assert {k: after[k] for k in totals} == {k: before[k] for k in totals}


async def test_two_managers_on_one_store_answer_the_same(
    api: httpx.AsyncClient, store: Store
) -> None:
    task_id = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()[
        "id"
    ]
    await run_to(store, task_id, "completed")
    async with asgi_client(store) as other:
        first = samples((await api.get("/metrics")).text)
        second = samples((await other.get("/metrics")).text)
    finished = [k for k in first if k[0] == "jobbers_tasks_finished_total"]
    assert finished
    assert {k: first[k] for k in finished} == {k: second[k] for k in finished}


async def test_the_managers_own_requests_by_route_template_and_status(
    api: httpx.AsyncClient, store: Store
) -> None:
    one = await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})
    assert one.status_code == 201
    bad = await api.post("/tasks", json={"name": "add", "kwargs": {"x": "no"}})
    assert bad.status_code == 422
    for _ in range(2):
        assert (await api.get(f"/tasks/{one.json()['id']}")).status_code == 200
    assert (await api.get("/tasks/no-such-task")).status_code == 404
    assert (await api.get("/no/such/route")).status_code == 404
    got = samples((await api.get("/metrics")).text)

    def requests(method: str, route: str, status: str) -> float:
        key = (("method", method), ("route", route), ("status", status))
        return got.get(("jobbers_http_requests_total", key), 0)

    assert requests("POST", "/tasks", "201") == 1  # answered by the fast path
    assert requests("POST", "/tasks", "422") == 1  # answered by the route
    assert requests("GET", "/tasks/{task_id}", "200") == 2
    assert requests("GET", "/tasks/{task_id}", "404") == 1
    assert requests("GET", "other", "404") == 1
    assert not [k for k in got if any(v == one.json()["id"] for _, v in k[1])]
    latency = (("method", "GET"), ("route", "/tasks/{task_id}"), ("status", "200"))
    assert got[("jobbers_http_request_duration_seconds_count", latency)] == 2
    assert got[("jobbers_http_request_duration_seconds_bucket", (("le", "+Inf"), *latency))] == 2
    assert got[("jobbers_http_request_duration_seconds_sum", latency)] > 0
