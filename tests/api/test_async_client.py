"""AsyncClient against the app in-process: the same calls as Client, awaited."""

from __future__ import annotations

import httpx
import pytest

from jobbers import APIError, AsyncClient
from jobbers.manager import create_app
from jobbers.store.base import Store

from .helpers import run_to

pytestmark = pytest.mark.anyio


async def test_async_client_calls(store: Store) -> None:
    transport = httpx.ASGITransport(app=create_app(store, token="t"))
    async with AsyncClient("http://jobbers.test", token="t", transport=transport) as client:
        assert await client.healthz() == {"status": "ok"}
        task = await client.submit("add", {"x": 1, "y": 2}, queue="q", priority=3)
        assert (task["queue"], task["priority"]) == ("q", 3)
        await run_to(store, task["id"], "completed", result=3, queue="q")
        done = await client.wait(task["id"], timeout=2)
        assert done["result"] == 3
        assert await client.statuses([task["id"]]) == {task["id"]: "completed"}
        events, cursor = await client.events()
        assert [e["status"] for e in events] == ["submitted", "started", "completed"]
        assert (await client.events(after=cursor)) == ([], cursor)
        assert await client.latest_cursor() == cursor
        other = await client.submit("add", {"x": 1, "y": 2})
        assert (await client.cancel(other["id"]))["status"] == "cancelled"
        assert await client.cancel_many([task["id"], "ghost"]) == {
            "cancelled": [],
            "not_cancellable": [task["id"]],
            "unknown": ["ghost"],
        }
        assert len((await client.list_tasks(limit=1))["tasks"]) == 1
        assert [t["kwargs"] for t in await client.submit_many([{"name": "sleep"}])] == [{}]
    async with AsyncClient("http://jobbers.test", transport=transport) as anonymous:
        with pytest.raises(APIError) as denied:
            await anonymous.get(task["id"])
        assert denied.value.status_code == 401


async def test_wait_times_out_with_the_last_status(store: Store) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        task = await client.submit("add", {"x": 1, "y": 2})
        with pytest.raises(TimeoutError, match="submitted"):
            await client.wait(task["id"], timeout=0.1)


async def test_odd_ids_stay_in_their_path_segment(store: Store) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        for odd in ("a/cancel", "x?y=1", "../healthz"):
            with pytest.raises(APIError) as missing:
                await client.get(odd)
            # ASGI hands routes a decoded path, so "%2F" still splits: never a success though.
            assert missing.value.status_code in (404, 405)


@pytest.mark.parametrize("dots", [".", ".."])
async def test_dot_ids_are_refused_before_any_request(store: Store, dots: str) -> None:
    """A URL resolves them away: ``/tasks/.`` would be the task list, ``cancel`` the bulk route."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    async with AsyncClient("http://jobbers.test", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ValueError, match="cannot be a task id"):
            await c.get(dots)
        with pytest.raises(ValueError, match="cannot be a task id"):
            await c.cancel(dots)
    assert requests == []


@pytest.mark.parametrize("path", ["/tasks/%2E", "/tasks/%2E%2E", "/tasks/%2E/cancel"])
async def test_dot_ids_in_a_path_are_422(store: Store, path: str) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as api:
        method = "POST" if path.endswith("cancel") else "GET"
        answer = await api.request(method, path)
    assert answer.status_code == 422, answer.text


async def test_a_non_json_answer_is_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy login</html>")

    transport = httpx.MockTransport(handler)
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        with pytest.raises(APIError, match="proxy login"):
            await client.healthz()


async def test_user_values_come_back_exactly_whatever_their_size(store: Store) -> None:
    """Answers are decoded with orjson unless they hold a number it would read inexactly."""
    exact = {
        "past 64 bits": 2**70,
        "below int64": -(2**63) - 1,
        "u64 max": 2**64 - 1,
        "17 digits": 12345678901234567,
        "float": 0.1,
        "digits in a string": "1234567890123456789012",
        "lone surrogate": "\ud800",
    }
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        for value in exact.items():
            task = await client.submit("sleep", {"seconds": 0})
            await run_to(store, task["id"], "completed", result=dict([value]))
            got = (await client.get(task["id"]))["result"]
            assert got == dict([value])
            assert type(got[value[0]]) is type(value[1])
