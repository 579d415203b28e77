"""The edges of the Manager: the token check and the body size limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from jobbers.http.limits import BodyLimit, BodyLimits
from jobbers.store.base import Store

from .conftest import TOKEN, asgi_client
from .helpers import stored_ids

pytestmark = pytest.mark.anyio

ADD = {"name": "add", "kwargs": {"x": 1, "y": 2}}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", "Bearer "],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tasks"), ("GET", "/tasks"), ("GET", "/openapi.json"), ("GET", "/nowhere")],
)
async def test_every_route_needs_the_token(
    store: Store, header: str | None, method: str, path: str
) -> None:
    headers = {"authorization": header} if header is not None else {}
    async with asgi_client(store, token=TOKEN) as api:
        response = await api.request(method, path, json=ADD, headers=headers)
    assert response.status_code == 401
    assert "detail" in response.json()
    assert TOKEN not in response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert await stored_ids(store) == []


async def test_the_right_token_opens_every_route(store: Store) -> None:
    async with asgi_client(store, token=TOKEN) as api:
        headers = {"Authorization": f"bearer {TOKEN}"}
        assert (await api.post("/tasks", json=ADD, headers=headers)).status_code == 201
        assert (await api.get("/openapi.json", headers=headers)).status_code == 200


async def test_healthz_needs_no_token(store: Store) -> None:
    async with asgi_client(store, token=TOKEN) as api:
        assert (await api.get("/healthz")).json() == {"status": "ok"}


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body and answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = json.dumps({"size": size}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _call(app: BodyLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> Message:
    """Stream ``chunks`` as a request body (no Content-Length unless given) and return the start."""
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/tasks", "headers": headers}
    await app(scope, receive, send)
    start = sent[0]
    start["body"] = b"".join(m.get("body", b"") for m in sent[1:])
    return start


async def test_a_streamed_body_is_counted_as_it_arrives() -> None:
    app = BodyLimit(_echo, BodyLimits(max_bytes=1000))
    small = await _call(app, [b"x" * 400, b"x" * 600], [])
    assert (small["status"], json.loads(small["body"])) == (200, {"size": 1000})
    large = await _call(app, [b"x" * 600, b"x" * 600, b"x" * 600], [])
    assert large["status"] == 413
    assert "1000 bytes" in json.loads(large["body"])["detail"]


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = BodyLimit(_echo, BodyLimits(max_bytes=1000))
    response = await _call(app, [], [(b"content-length", b"5000")])
    assert response["status"] == 413


async def test_bulk_routes_have_a_larger_limit(api: httpx.AsyncClient, store: Store) -> None:
    """10,000 ids of 128 characters are 1.3 MB: over the 1 MiB of a single submission."""
    ids = [f"{i:0128d}" for i in range(10_000)]
    response = await api.post("/task-status/bulk", json={"task_ids": ids})
    assert response.status_code == 200
    tasks = [{"name": "fail", "kwargs": {"message": "p" * 200}} for _ in range(6000)]
    assert (await api.post("/tasks/bulk", json={"tasks": tasks})).status_code == 201
    huge = [{"name": "fail", "kwargs": {"message": "p" * 1700}} for _ in range(10_000)]
    assert (await api.post("/tasks/bulk", json={"tasks": huge})).status_code == 413
    assert len(await store.statuses(ids)) == 0


async def test_over_one_mebibyte_through_the_app(api: httpx.AsyncClient, store: Store) -> None:
    body = json.dumps({"name": "add", "kwargs": {"pad": "a" * (1 << 20)}}).encode()

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    response = await api.post(
        "/tasks", content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert await stored_ids(store) == []
