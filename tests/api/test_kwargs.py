"""Kwargs checked against the task's parameters at submit, and task-declared secret kwargs."""

from __future__ import annotations

import time
from typing import Any, Literal

import httpx
import pytest

from jobbers import TaskContext, task
from jobbers.models import RetryPolicy, TaskDefinition, WorkerInfo
from jobbers.params import check_kwargs, parameters_schema
from jobbers.registry import get_task
from jobbers.store.base import Store

from .conftest import asgi_client
from .helpers import stored_ids

pytestmark = pytest.mark.anyio

GREET = "tests.api.greet"


@task(name=GREET, secrets=("api_key",))
def greet(name: str, times: int = 1, api_key: str = "", tags: list[str] | None = None) -> str:
    return f"Hello, {name}!" * times


@pytest.mark.parametrize(
    ("kwargs", "param", "kind"),
    [
        ({"nam": "Bob"}, "nam", "unexpected_kwarg"),
        ({}, "name", "missing"),
        ({"name": 7}, "name", "type"),
        ({"name": "Bob", "times": "twice"}, "times", "type"),
        ({"name": "Bob", "tags": ["a", 3]}, "tags", "type"),
    ],
)
async def test_bad_kwargs_answer_422_naming_the_parameter(
    api: httpx.AsyncClient, store: Store, kwargs: dict[str, Any], param: str, kind: str
) -> None:
    response = await api.post("/tasks", json={"name": GREET, "kwargs": kwargs})
    assert response.status_code == 422
    problems = [p for p in response.json()["detail"] if p["loc"][:3] == ["body", "kwargs", param]]
    assert problems, response.json()
    assert problems[0]["type"] == kind
    assert repr(param) in problems[0]["msg"]
    assert await stored_ids(store) == []


async def test_unknown_kwarg_lists_what_the_task_takes(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks", json={"name": GREET, "kwargs": {"nam": "Bob"}})
    (unexpected,) = [p for p in response.json()["detail"] if p["type"] == "unexpected_kwarg"]
    assert "api_key, name, tags, times" in unexpected["msg"]


async def test_refusals_never_echo_the_values(api: httpx.AsyncClient) -> None:
    body = {"name": GREET, "kwargs": {"name": 123456789, "times": "hunter2", "pw": "s3cr3t"}}
    response = await api.post("/tasks", json=body)
    assert response.status_code == 422
    for value in ("123456789", "hunter2", "s3cr3t"):
        assert value not in response.text


async def test_bulk_reports_each_bad_task_and_stores_nothing(
    api: httpx.AsyncClient, store: Store
) -> None:
    tasks = [
        {"name": GREET, "kwargs": {"name": "Ada"}},
        {"name": GREET, "kwargs": {"nam": "Bob"}},
        {"name": "add", "kwargs": {"x": 1, "y": "two"}},
    ]
    response = await api.post("/tasks/bulk", json={"tasks": tasks})
    assert response.status_code == 422
    locs = {tuple(p["loc"]) for p in response.json()["detail"]}
    assert ("body", "tasks", 1, "kwargs", "nam") in locs
    assert ("body", "tasks", 1, "kwargs", "name") in locs
    assert ("body", "tasks", 2, "kwargs", "y") in locs
    assert not any(loc[2] == 0 for loc in locs)
    assert await stored_ids(store) == []


async def test_good_kwargs_are_stored(api: httpx.AsyncClient, store: Store) -> None:
    body = {"name": GREET, "kwargs": {"name": "Ada", "times": 2, "tags": ["x"]}}
    response = await api.post("/tasks", json=body)
    assert response.status_code == 201
    assert await stored_ids(store) == [response.json()["id"]]


async def test_a_manager_without_the_code_checks_what_workers_registered(store: Store) -> None:
    schema = parameters_schema(greet.fn)
    definition = TaskDefinition("remote.greet", "default", RetryPolicy(), schema, ("pin",))
    info = WorkerInfo("w:1:aa", "w", ("default",), time.time(), time.time(), 0)
    await store.register_worker(info, [definition])
    assert (await store.task_definitions())["remote.greet"] == definition
    async with asgi_client(store) as api:
        bad = await api.post("/tasks", json={"name": "remote.greet", "kwargs": {"nam": "B"}})
        assert bad.status_code == 422
        good = await api.post(
            "/tasks", json={"name": "remote.greet", "kwargs": {"name": "B", "pin": "1234"}}
        )
    assert good.status_code == 422  # pin is secret, but greet's schema does not take it
    assert "1234" not in good.text


async def test_definitions_without_a_schema_accept_any_kwargs(store: Store) -> None:
    info = WorkerInfo("w:1:aa", "w", ("default",), time.time(), time.time(), 0)
    await store.register_worker(info, [TaskDefinition("old.task", "default", RetryPolicy())])
    async with asgi_client(store) as api:
        response = await api.post("/tasks", json={"name": "old.task", "kwargs": {"any": 1}})
    assert response.status_code == 201


async def test_declared_secret_kwargs_are_masked(api: httpx.AsyncClient, store: Store) -> None:
    body = {"name": GREET, "kwargs": {"name": "Ada", "api_key": "k-123"}}
    task_out = (await api.post("/tasks", json=body)).json()
    assert task_out["kwargs"] == {"name": "Ada", "api_key": "***"}
    shown = (await api.get(f"/tasks/{task_out['id']}")).json()
    assert shown["kwargs"]["api_key"] == "***"
    assert (await store.get([task_out["id"]]))[task_out["id"]].kwargs["api_key"] == "k-123"


async def test_secret_names_a_worker_registered_are_masked(store: Store) -> None:
    schema = {"type": "object", "properties": {"pin": {"type": "string"}}}
    definition = TaskDefinition("remote.pin", "default", RetryPolicy(), schema, ("pin",))
    info = WorkerInfo("w:1:aa", "w", ("default",), time.time(), time.time(), 0)
    await store.register_worker(info, [definition])
    async with asgi_client(store) as api:
        created = await api.post("/tasks", json={"name": "remote.pin", "kwargs": {"pin": "9876"}})
        assert created.status_code == 201
        listed = await api.get("/tasks")
    assert "9876" not in created.text
    assert "9876" not in listed.text


def test_schema_follows_the_signature() -> None:
    def fn(ctx: TaskContext, a: int, mode: Literal["x", "y"] = "x", obj: object = None) -> None:
        pass

    schema = parameters_schema(fn, skip="ctx")
    assert schema["required"] == ["a"]
    assert set(schema["properties"]) == {"a", "mode", "obj"}
    assert schema["additionalProperties"] is False
    assert check_kwargs("fn", schema, {"a": 1, "mode": "y", "obj": {"any": [1]}}) == []
    assert [p.loc for p in check_kwargs("fn", schema, {"a": 1, "mode": "z"})] == [("mode",)]


def test_open_ended_kwargs_accept_unknown_names() -> None:
    def fn(a: int, **rest: Any) -> None:
        pass

    schema = parameters_schema(fn)
    assert check_kwargs("fn", schema, {"a": 1, "b": 2}) == []
    assert [p.type for p in check_kwargs("fn", schema, {"b": 2})] == ["missing"]


def test_a_task_with_context_registers_its_schema_without_it() -> None:
    assert "ctx" not in get_task("heartbeat").parameters["properties"]
    assert get_task(GREET).definition().secrets == ("api_key",)


def test_secrets_must_name_parameters() -> None:
    def fn(a: int) -> None:
        pass

    with pytest.raises(ValueError, match="apikey"):
        task(name="tests.api.bad_secret", secrets=("apikey",))(fn)
