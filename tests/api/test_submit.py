"""Submitting tasks: defaults, overrides, idempotency, and bad input that stores nothing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from jobbers import task
from jobbers.models import RetryPolicy, TaskDefinition, WorkerInfo
from jobbers.store.base import Store

from .helpers import stored_ids

pytestmark = pytest.mark.anyio

ADD = {"name": "add", "kwargs": {"x": 1, "y": 2}}
ECHO = "tests.api.echo"


@task(name=ECHO)
def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def test_submit_answers_201_with_the_task(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks", json=ADD)
    assert response.status_code == 201
    task = response.json()
    assert task["name"] == "add"
    assert task["queue"] == "default"
    assert task["kwargs"] == {"x": 1, "y": 2}
    assert task["status"] == "submitted"
    assert task["attempts"] == []
    submitted = datetime.fromisoformat(task["submitted_at"])
    assert submitted.tzinfo == UTC
    assert abs(submitted.timestamp() - time.time()) < 5


async def test_submit_task_alias(api: httpx.AsyncClient) -> None:
    response = await api.post("/submit-task", json=ADD)
    assert response.status_code == 201
    assert (await api.get(f"/tasks/{response.json()['id']}")).status_code == 200


async def test_same_id_same_payload_is_idempotent(api: httpx.AsyncClient, store: Store) -> None:
    body = {**ADD, "id": "order-42"}
    first = await api.post("/tasks", json=body)
    again = await api.post("/tasks", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["submitted_at"] == first.json()["submitted_at"]
    assert await stored_ids(store) == ["order-42"]


async def test_same_id_other_payload_conflicts(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/tasks", json={**ADD, "id": "order-42"})
    response = await api.post("/tasks", json={**ADD, "id": "order-42", "kwargs": {"x": 9, "y": 2}})
    assert response.status_code == 409
    assert "order-42" in response.json()["detail"]
    assert (await store.get(["order-42"]))["order-42"].kwargs == {"x": 1, "y": 2}


async def test_secrets_in_kwargs_are_masked(api: httpx.AsyncClient, store: Store) -> None:
    body = {"name": ECHO, "kwargs": {"x": 1, "auth": {"Token": "abc", "user": "u"}}}
    task = (await api.post("/tasks", json=body)).json()
    assert task["kwargs"] == {"x": 1, "auth": {"Token": "***", "user": "u"}}
    assert (await store.get([task["id"]]))[task["id"]].kwargs["auth"]["Token"] == "abc"
    assert (await api.get(f"/tasks/{task['id']}")).json()["kwargs"]["auth"]["Token"] == "***"


async def test_submission_overrides_the_task_defaults(api: httpx.AsyncClient) -> None:
    body = {
        **ADD,
        "queue": "fast",
        "priority": 5,
        "max_retries": 4,
        "timeout": 2.5,
        "backoff": "linear",
        "base_delay": 0.1,
        "max_delay": 1.0,
        "retry_on": ["ValueError"],
        "dead_letter": "drop",
    }
    task = (await api.post("/tasks", json=body)).json()
    assert (task["queue"], task["priority"], task["max_retries"]) == ("fast", 5, 4)
    assert task["policy"] == {
        "max_retries": 4,
        "backoff": "linear",
        "base_delay": 0.1,
        "max_delay": 1.0,
        "retry_on": ["ValueError"],
        "timeout": 2.5,
        "max_heartbeat_interval": None,
        "dead_letter": "drop",
        "max_lost": 3,
    }


async def test_the_task_defaults_apply(api: httpx.AsyncClient) -> None:
    task = (await api.post("/tasks", json={"name": "fail"})).json()
    assert task["policy"]["max_retries"] == 2
    assert task["policy"]["backoff"] == "constant"


@pytest.mark.parametrize("when", ["delay", "run_at"])
async def test_delayed_tasks_are_scheduled(api: httpx.AsyncClient, when: str) -> None:
    later = time.time() + 3600
    start: dict[str, Any] = (
        {"delay": 3600}
        if when == "delay"
        else {"run_at": datetime.fromtimestamp(later, UTC).isoformat()}
    )
    task = (await api.post("/tasks", json={**ADD, **start})).json()
    assert task["status"] == "scheduled"
    assert abs(datetime.fromisoformat(task["due_at"]).timestamp() - later) < 5


async def test_names_registered_by_a_worker_are_accepted(
    api: httpx.AsyncClient, store: Store
) -> None:
    """A Manager without the task code accepts what workers registered, with their defaults."""
    assert (await api.post("/tasks", json={"name": "remote.only"})).status_code == 404
    policy = RetryPolicy(max_retries=7)
    info = WorkerInfo("w:1:aa", "w", ("remote",), time.time(), time.time(), 0)
    await store.register_worker(info, [TaskDefinition("remote.only", "remote", policy)])
    task = (await api.post("/tasks", json={"name": "remote.only"})).json()
    assert (task["queue"], task["max_retries"]) == ("remote", 7)


BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("unknown name", json.dumps({"name": "no.such.task"}).encode(), 404),
    ("missing name", json.dumps({"kwargs": {}}).encode(), 422),
    ("kwargs a list", json.dumps({"name": "add", "kwargs": [1, 2]}).encode(), 422),
    ("kwargs a string", json.dumps({"name": "add", "kwargs": "x=1"}).encode(), 422),
    ("body a list", b"[1, 2]", 422),
    ("malformed JSON", b'{"name": "add", ', 400),
    ("empty body", b"", 422),
    ("NaN in kwargs", b'{"name": "add", "kwargs": {"x": NaN}}', 422),
    ("bad id", json.dumps({**ADD, "id": "has space"}).encode(), 422),
    ("id too long", json.dumps({**ADD, "id": "x" * 129}).encode(), 422),
    ("id a dot", json.dumps({**ADD, "id": "."}).encode(), 422),
    ("id two dots", json.dumps({**ADD, "id": ".."}).encode(), 422),
    ("queue a dot", json.dumps({**ADD, "queue": "."}).encode(), 422),
    ("bad queue", json.dumps({**ADD, "queue": "a/b"}).encode(), 422),
    ("negative retries", json.dumps({**ADD, "max_retries": -1}).encode(), 422),
    ("zero timeout", json.dumps({**ADD, "timeout": 0}).encode(), 422),
    ("unknown backoff", json.dumps({**ADD, "backoff": "fibonacci"}).encode(), 422),
    (
        "delay and run_at",
        json.dumps({**ADD, "delay": 1, "run_at": "2030-01-01T00:00:00Z"}).encode(),
        422,
    ),
    ("typo in a field", json.dumps({**ADD, "max_retry": 3}).encode(), 422),
    ("huge priority", json.dumps({**ADD, "priority": 10**30}).encode(), 422),
    (
        "deep nesting",
        ('{"name": "add", "kwargs": {"x": ' + "[" * 200 + "]" * 200 + "}}").encode(),
        422,
    ),
    ("over 1 MiB", json.dumps({"name": "add", "kwargs": {"x": "a" * (1 << 20)}}).encode(), 413),
]


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES]
)
@pytest.mark.parametrize("path", ["/tasks", "/tasks/bulk"])
async def test_bad_input_is_refused_and_stores_nothing(
    api: httpx.AsyncClient, store: Store, body: bytes, code: int, path: str
) -> None:
    if path == "/tasks/bulk" and body.startswith(b"{"):
        body = b'{"tasks": [' + json.dumps(ADD).encode() + b", " + body + b"]}"
    if path == "/tasks/bulk" and code == 413:
        code = 422  # the bulk limit is larger, but each task's kwargs still must fit in 1 MiB
    response = await api.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == code, response.text[:1000]
    assert "detail" in response.json()
    assert await stored_ids(store) == []
    assert await store.events(None, 10) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"name": "add", "kwargs": {"x": ' + "[" * 10_000 + "]" * 10_000 + "}}", "nested"),
        ('{"name": "add", "kwargs": {"x": ' + "7" * 5_000 + "}}", "digits"),
    ],
    ids=["10000 deep", "5000 digits"],
)
async def test_unparsable_json_gets_a_400_saying_what_to_fix(
    api: httpx.AsyncClient, store: Store, body: str, says: str
) -> None:
    response = await api.post(
        "/tasks", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert says in detail
    assert "as a string" in detail  # what to send instead
    assert await stored_ids(store) == []


async def test_a_numeric_run_at_is_epoch_seconds(api: httpx.AsyncClient) -> None:
    later = int(time.time()) + 3600
    task = (await api.post("/tasks", json={**ADD, "run_at": later})).json()
    assert task["status"] == "scheduled"
    assert datetime.fromisoformat(task["due_at"]).timestamp() == later


async def test_a_run_at_in_milliseconds_is_refused_not_guessed(
    api: httpx.AsyncClient, store: Store
) -> None:
    millis = (int(time.time()) + 3600) * 1000
    response = await api.post("/tasks", json={**ADD, "run_at": millis})
    assert response.status_code == 422
    assert "epoch seconds" in response.json()["detail"][0]["msg"]
    assert await stored_ids(store) == []


async def test_validation_errors_do_not_echo_input(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/tasks", json={"name": "add", "kwargs": {"token": "abc"}, "priority": "x"}
    )
    assert response.status_code == 422
    assert "abc" not in response.text


async def test_bulk_keeps_input_order_in_one_call(api: httpx.AsyncClient, store: Store) -> None:
    tasks = [{"name": "add", "kwargs": {"x": i, "y": 1}} for i in range(50)]
    tasks.append({"name": "add", "kwargs": {"x": 0, "y": 1}, "id": "dup"})
    tasks.append({"name": "add", "kwargs": {"x": 0, "y": 1}, "id": "dup"})
    response = await api.post("/tasks/bulk", json={"tasks": tasks})
    assert response.status_code == 201
    out = response.json()["tasks"]
    assert [t["kwargs"]["x"] for t in out] == [*range(50), 0, 0]
    assert out[-1]["id"] == out[-2]["id"] == "dup"
    assert len(await stored_ids(store)) == 51


async def test_bulk_with_conflicting_duplicate_ids_stores_nothing(
    api: httpx.AsyncClient, store: Store
) -> None:
    tasks = [{**ADD, "id": "same"}, {**ADD, "id": "same", "kwargs": {"x": 2, "y": 2}}]
    response = await api.post("/tasks/bulk", json={"tasks": tasks})
    assert response.status_code == 409
    assert await stored_ids(store) == []


async def test_bulk_over_10000_is_refused(api: httpx.AsyncClient, store: Store) -> None:
    response = await api.post("/tasks/bulk", json={"tasks": [ADD] * 10_001})
    assert response.status_code in (413, 422)
    assert await stored_ids(store) == []
