"""The submit fast path answers exactly as the FastAPI routes do, and hands them what it does not
take on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.datastructures import State

from jobbers.api.fast_submit import FastSubmit
from jobbers.http.limits import BodyLimits
from jobbers.store.base import Store

from .helpers import stored_ids

pytestmark = pytest.mark.anyio

ADD = {"name": "add", "kwargs": {"x": 1, "y": 2}}
VOLATILE = {"id", "submitted_at", "updated_at"}


def _stable(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in VOLATILE}


async def test_fast_and_routed_answers_agree(api: httpx.AsyncClient) -> None:
    """``application/json`` takes the fast path, with a charset too; another JSON type
    (``application/x+json``) goes to the FastAPI route: all three answer alike."""
    fast = await api.post("/tasks", json=ADD)
    charset = await api.post(
        "/tasks",
        content=httpx.Request("POST", "/", json=ADD).content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    routed = await api.post(
        "/tasks",
        content=httpx.Request("POST", "/", json=ADD).content,
        headers={"content-type": "application/x+json"},
    )
    assert fast.status_code == charset.status_code == routed.status_code == 201
    assert _stable(fast.json()) == _stable(charset.json()) == _stable(routed.json())


async def test_a_repeated_id_answers_200_with_the_first_task(api: httpx.AsyncClient) -> None:
    first = await api.post("/tasks", json={**ADD, "id": "same"})
    again = await api.post("/tasks", json={**ADD, "id": "same"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


async def test_a_conflicting_id_is_409_and_stores_nothing_new(
    api: httpx.AsyncClient, store: Store
) -> None:
    await api.post("/tasks", json={**ADD, "id": "taken"})
    other = {"name": "add", "kwargs": {"x": 9, "y": 9}, "id": "taken"}
    clash = await api.post("/tasks", json=other)
    assert clash.status_code == 409
    assert "taken" in clash.json()["detail"]
    assert (await store.get(["taken"]))["taken"].kwargs == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"name": "add", "kwargs": {"x": 1}}, 422, ["body", "kwargs", "y"]),
        ({"name": "nope"}, 404, None),
        ({"name": "add", "kwargs": {"x": 1, "y": 2}, "max_retry": 3}, 422, ["body", "max_retry"]),
    ],
)
async def test_what_the_fast_path_refuses_gets_the_routes_error(
    api: httpx.AsyncClient, store: Store, body: dict[str, Any], status: int, where: Any
) -> None:
    response = await api.post("/tasks", json=body)
    assert response.status_code == status
    detail = response.json()["detail"]
    if where is not None:
        assert [d["loc"] for d in detail] == [where]
    assert await stored_ids(store) == []


async def test_a_query_string_is_checked_by_the_route(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks?wait=1", json=ADD)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "wait"]


async def test_bulk_duplicates_in_one_batch(api: httpx.AsyncClient, store: Store) -> None:
    same = {**ADD, "id": "twice"}
    ok = await api.post("/tasks/bulk", json={"tasks": [same, same, ADD]})
    assert ok.status_code == 201
    tasks = ok.json()["tasks"]
    assert [t["id"] for t in tasks[:2]] == ["twice", "twice"]
    clash = await api.post(
        "/tasks/bulk", json={"tasks": [{**ADD, "id": "x1"}, {**same, "id": "x1", "kwargs": {}}]}
    )
    assert clash.status_code in (409, 422)
    assert "x1" not in await stored_ids(store)


def _scope(path: str = "/tasks", query: bytes = b"", **headers: str) -> dict[str, Any]:
    given = {name.replace("_", "-"): value for name, value in headers.items()}
    merged = {"content-length": "20", "content-type": "application/json", **given}
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": [(name.encode(), value.encode()) for name, value in merged.items()],
    }


@pytest.mark.parametrize(
    ("scope", "taken"),
    [
        (_scope(authorization="Bearer s3cret"), True),
        (_scope("/tasks/bulk", authorization="bearer s3cret", content_length="2000"), True),
        (_scope(authorization="Bearer wrong"), False),
        (_scope(), False),
        (_scope(query=b"wait=1", authorization="Bearer s3cret"), False),
        (_scope(authorization="Bearer s3cret", content_length="1001"), False),
        (_scope(authorization="Bearer s3cret", content_length="abc"), False),
        (_scope(authorization="Bearer s3cret", content_type="text/plain"), False),
        (_scope("/tasks/cancel", authorization="Bearer s3cret"), False),
    ],
)
def test_the_front_door_takes_only_what_the_stack_would_pass_through(
    scope: dict[str, Any], taken: bool
) -> None:
    """A wrong or missing token, a body over its route's limit (or of unknown length) and
    anything but a plain JSON submission go through the whole stack (401, 413, the route)."""
    limits = BodyLimits(1000, {"/tasks/bulk": 5000})
    front = FastSubmit(app=None, state=State(), token="s3cret", limits=limits)  # type: ignore[arg-type]
    assert front.takes(scope) is taken
    del scope["headers"][0]  # no Content-Length (a chunked body): never taken
    assert front.takes(scope) is False
