"""Reading tasks back: by id, in pages, in bulk, and as the change feed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from jobbers.store.base import Store

from .helpers import run_to

pytestmark = pytest.mark.anyio


async def _submit(api: httpx.AsyncClient, n: int, name: str = "add") -> list[str]:
    kwargs = [{"x": i, "y": 0} if name == "add" else {"seconds": i} for i in range(n)]
    tasks = [{"name": name, "kwargs": k} for k in kwargs]
    response = await api.post("/tasks/bulk", json={"tasks": tasks})
    assert response.status_code == 201
    return [t["id"] for t in response.json()["tasks"]]


async def test_get_unknown_task_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/tasks/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


async def test_completed_task_shows_result_and_attempts(
    api: httpx.AsyncClient, store: Store
) -> None:
    task_id = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()[
        "id"
    ]
    await run_to(store, task_id, "completed", result={"sum": 3, "password": "hunter2"})
    task = (await api.get(f"/tasks/{task_id}")).json()
    assert task["status"] == "completed"
    assert task["result"] == {"sum": 3, "password": "***"}
    (attempt,) = task["attempts"]
    assert attempt["number"] == 1
    assert attempt["outcome"] == "completed"
    assert attempt["worker"]
    assert attempt["started_at"]
    assert attempt["finished_at"]
    assert task["finished_at"] is not None


async def test_failed_task_shows_its_error(api: httpx.AsyncClient, store: Store) -> None:
    task_id = (await api.post("/tasks", json={"name": "sleep"})).json()["id"]
    await run_to(store, task_id, "failed")
    task = (await api.get(f"/tasks/{task_id}")).json()
    assert task["status"] in ("failed", "dead")
    assert task["error"]["type"] == "RuntimeError"
    assert task["attempts"][0]["error"]["message"] == "boom"


async def test_list_pages_newest_first_by_cursor(api: httpx.AsyncClient) -> None:
    ids = await _submit(api, 25)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = (await api.get("/tasks", params=params)).json()
        seen += [t["id"] for t in body["tasks"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ids[::-1]


async def test_list_filters(api: httpx.AsyncClient) -> None:
    await _submit(api, 3, "add")
    await _submit(api, 2, "sleep")
    body = (await api.get("/tasks", params={"name": "sleep", "status": "submitted"})).json()
    assert [t["name"] for t in body["tasks"]] == ["sleep", "sleep"]
    assert (await api.get("/tasks", params={"status": "completed"})).json()["tasks"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "abc"},
        {"cursor": "9" * 30},
        {"cursor": "-1"},
        {"cursor": " 5"},
        {"limit": 0},
        {"limit": 1001},
        {"status": "odd"},
    ],
)
async def test_list_rejects_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str | int]
) -> None:
    response = await api.get("/tasks", params=params)
    assert response.status_code == 422
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/tasks", {"stauts": "dead"}),
        ("/dead-letter", {"limit": 5, "page": 2}),
        ("/events", {"since": "0"}),
        ("/queues", {"x": "1"}),
        ("/healthz", {"verbose": "1"}),
    ],
)
async def test_unknown_query_parameters_are_refused_like_unknown_body_fields(
    api: httpx.AsyncClient, route: str, params: dict[str, str | int]
) -> None:
    """A typo (``stauts``) must not answer every task as if no filter was given."""
    response = await api.get(route, params=params)
    assert response.status_code == 422, response.text
    unknown = [e for e in response.json()["detail"] if e["type"] == "extra_forbidden"]
    assert [e["loc"][1] for e in unknown] == [k for k in params if k != "limit"]
    assert "unknown query parameter" in unknown[0]["msg"]


async def test_list_answers_leave_out_large_values_that_get_shows_whole(
    api: httpx.AsyncClient, store: Store
) -> None:
    big = "k" * 100_000
    small = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()
    await run_to(store, small["id"], "completed", result=3)
    heavy = (
        await api.post(
            "/tasks", json={"name": "fail", "kwargs": {"message": big}, "max_retries": 0}
        )
    ).json()
    await run_to(store, heavy["id"], "failed")
    done = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 0, "y": 0}})).json()
    await run_to(store, done["id"], "completed", result=["r" * 50_000])
    listed = {t["id"]: t for t in (await api.get("/tasks")).json()["tasks"]}
    assert "omitted" not in listed[small["id"]]
    assert listed[small["id"]]["result"] == 3
    assert listed[heavy["id"]]["omitted"] == ["kwargs"]
    assert listed[heavy["id"]]["kwargs"] == {}
    assert listed[done["id"]]["omitted"] == ["result"]
    assert listed[done["id"]]["result"] is None
    dead = (await api.get("/dead-letter")).json()["tasks"]
    assert [(t["id"], t["omitted"]) for t in dead] == [(heavy["id"], ["kwargs"])]
    whole = (await api.get(f"/tasks/{heavy['id']}")).json()
    assert whole["kwargs"] == {"message": big}
    assert (await api.get(f"/tasks/{done['id']}")).json()["result"] == ["r" * 50_000]


async def test_bulk_status_answers_10000_ids_at_once(api: httpx.AsyncClient) -> None:
    ids = await _submit(api, 10_000)
    asked = ids[:9_990] + [f"unknown-{i}" for i in range(10)]
    started = time.perf_counter()
    response = await api.post("/task-status/bulk", json={"task_ids": asked})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    statuses = response.json()["statuses"]
    assert len(statuses) == 9_990
    assert set(statuses.values()) == {"submitted"}
    assert elapsed < 5.0, f"10,000 statuses took {elapsed:.2f}s"
    too_many = await api.post("/task-status/bulk", json={"task_ids": [*ids, "one-more"]})
    assert too_many.status_code == 422


async def test_events_page_from_cursor_to_cursor_exactly_once(
    api: httpx.AsyncClient, store: Store
) -> None:
    ids = await _submit(api, 30)
    for task_id in ids[:5]:
        await api.post(f"/tasks/{task_id}/cancel")
    one = await api.post("/tasks", json={"name": "sleep", "queue": "solo"})
    await run_to(store, one.json()["id"], "completed", result=1, queue="solo")

    everything = (await api.get("/events", params={"limit": 10_000})).json()["events"]
    assert len(everything) == 30 + 5 + 3  # submitted x31, cancelled x5, started, completed
    paged: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 7}
        if cursor is not None:
            params["after"] = cursor
        body = (await api.get("/events", params=params)).json()
        if not body["events"]:
            assert body["cursor"] == cursor
            break
        paged += body["events"]
        cursor = body["cursor"]
        assert cursor == body["events"][-1]["cursor"]
    assert paged == everything
    assert len({e["cursor"] for e in paged}) == len(paged)
    assert [e["status"] for e in paged][-2:] == ["started", "completed"]
    assert {e["task_id"] for e in paged if e["status"] == "cancelled"} == set(ids[:5])


async def test_events_from_a_new_cursor_see_only_new_transitions(
    api: httpx.AsyncClient,
) -> None:
    await _submit(api, 3)
    cursor = (await api.get("/events")).json()["cursor"]
    assert (await api.get("/events", params={"after": cursor})).json() == {
        "events": [],
        "cursor": cursor,
    }
    new = (await api.post("/tasks", json={"name": "sleep"})).json()["id"]
    body = (await api.get("/events", params={"after": cursor})).json()
    assert [(e["task_id"], e["status"]) for e in body["events"]] == [(new, "submitted")]


async def test_a_waiting_read_of_the_feed_answers_with_the_first_new_event(
    api: httpx.AsyncClient,
) -> None:
    await _submit(api, 2)
    cursor = (await api.get("/events/latest")).json()["cursor"]
    reading = asyncio.ensure_future(api.get("/events", params={"after": cursor, "wait": 30}))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reading.done()  # nothing new yet: the read is held, not answered empty
    new = (await api.post("/tasks", json={"name": "sleep"})).json()["id"]
    # Far under the 30 s asked for: answered by the submission, not by the end of the wait.
    body = (await asyncio.wait_for(reading, 10)).json()
    assert [(e["task_id"], e["status"]) for e in body["events"]] == [(new, "submitted")]
    assert body["cursor"] == body["events"][-1]["cursor"]


async def test_a_waiting_read_with_nothing_new_answers_empty_at_the_same_cursor(
    api: httpx.AsyncClient,
) -> None:
    await _submit(api, 2)
    cursor = (await api.get("/events/latest")).json()["cursor"]
    body = (await api.get("/events", params={"after": cursor, "wait": 0.05})).json()
    assert body == {"events": [], "cursor": cursor}


async def test_a_waiting_read_with_a_backlog_answers_at_once(api: httpx.AsyncClient) -> None:
    ids = await _submit(api, 3)
    body = (await asyncio.wait_for(api.get("/events", params={"wait": 30}), 10)).json()
    assert [e["task_id"] for e in body["events"]] == ids


async def test_latest_cursor_starts_a_reader_at_now(api: httpx.AsyncClient) -> None:
    assert (await api.get("/events/latest")).json() == {"cursor": "0"}
    await _submit(api, 3)
    latest = (await api.get("/events/latest")).json()["cursor"]
    assert latest == (await api.get("/events")).json()["cursor"]
    new = (await api.post("/tasks", json={"name": "sleep"})).json()["id"]
    body = (await api.get("/events", params={"after": latest})).json()
    assert [(e["task_id"], e["status"]) for e in body["events"]] == [(new, "submitted")]


@pytest.mark.parametrize(
    "params",
    [
        {"after": "x"},
        {"after": "-1"},
        {"after": "1-"},
        {"after": "+1"},
        {"after": "9" * 30},
        {"limit": 10_001},
        {"wait": -1},
        {"wait": 61},
        {"wait": "nan"},
    ],
)
async def test_events_reject_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str | int]
) -> None:
    response = await api.get("/events", params=params)
    assert response.status_code == 422
    assert "detail" in response.json()
