"""Bodies the API cannot read answer as docs/api.md says: 400 for bytes that are not UTF-8 JSON,
415 for a body not sent as JSON, each with one line saying what to send; nothing is stored."""

from __future__ import annotations

import httpx
import pytest

from jobbers.store.base import Store

from .helpers import stored_ids

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
ADD = b'{"name": "add", "kwargs": {"x": 1, "y": 2}}'
FIX = "send a JSON object with the header Content-Type: application/json"


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/tasks", b'{"name": "add", "kwargs": {"x": 1,', "line 1, column 35"),
        ("POST", "/tasks/bulk", b'{"tasks": [\n  {"name": "add"},\n  {"name"}\n]}', "line 3"),
        ("PUT", "/queues/mail", b'{"concurrency": }', "line 1, column 17"),
        ("POST", "/tasks/cancel", b"{'task_ids': []}", "line 1, column 2"),
    ],
)
async def test_malformed_json_is_a_400_saying_where_and_what_to_send(
    api: httpx.AsyncClient, store: Store, method: str, path: str, body: bytes, where: str
) -> None:
    response = await api.request(method, path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith("the body is not valid JSON (")
    assert where in detail
    assert detail.endswith(FIX)
    assert await stored_ids(store) == []


@pytest.mark.parametrize("path", ["/tasks", "/tasks/bulk"])
async def test_a_body_that_is_not_utf8_is_a_400_saying_so(
    api: httpx.AsyncClient, store: Store, path: str
) -> None:
    body = b'{"name": "add", "kwargs": {"x": "caf\xe9"}}'
    response = await api.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith("the body is not UTF-8 (byte 36 cannot be read): " + FIX)
    assert "encoded as UTF-8" in detail
    assert await stored_ids(store) == []


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        ({}, "without a Content-Type"),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            "as application/x-www-form-urlencoded",
        ),
        ({"content-type": "text/plain; charset=utf-8"}, "as text/plain"),
    ],
    ids=["no header", "curl -d", "text"],
)
@pytest.mark.parametrize("path", ["/tasks", "/tasks/bulk", "/queues/mail"])
async def test_a_body_not_sent_as_json_is_a_415_naming_the_header(
    api: httpx.AsyncClient, store: Store, headers: dict[str, str], sent: str, path: str
) -> None:
    body = b'{"tasks": []}' if path == "/tasks/bulk" else ADD
    method = "PUT" if path.startswith("/queues") else "POST"
    request = api.build_request(method, path, content=body, headers=headers)
    assert request.headers.get("content-type") == headers.get("content-type")
    response = await api.send(request)
    assert response.status_code == 415, response.text
    assert response.json()["detail"] == (
        f"the body was sent {sent}: {FIX} (curl: -H 'Content-Type: application/json')"
    )
    assert await stored_ids(store) == []


async def test_a_json_body_of_the_wrong_shape_stays_a_422_list(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks", content=b"[1, 2]", headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_no_body_at_all_stays_a_422_naming_the_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks", headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body"], "msg": "Field required", "type": "missing"}
    ]


def test_the_openapi_schema_lists_400_and_415_where_a_body_is_read() -> None:
    from jobbers.api.errors import responses

    assert {400, 415, 422} <= set(responses(422))
