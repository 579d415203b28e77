"""With a token set, nothing but /healthz answers without it: every API route (walked from the
OpenAPI schema) and every dashboard route (walked from the app). Dashboard actions also refuse a
request from another origin, with or without a token configured."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

import jobbers.examples  # noqa: F401  (the names submitted below)
from jobbers.dashboard import router as dashboard
from jobbers.dashboard.session import COOKIE, session_value
from jobbers.manager import create_app
from jobbers.store.base import Store
from jobbers.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

TOKEN = "dash-token-1"
BASE = "http://jobbers.test"
SAME = {"Origin": BASE}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = SQLiteStore(str(tmp_path / "ui.db"))
    try:
        yield db
    finally:
        await db.close()


def client(store: Store, token: str | None = TOKEN) -> httpx.AsyncClient:
    app = create_app(store, token=token)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_api_route_refuses_without_the_token(store: Store) -> None:
    async with client(store) as api:
        schema = (await api.get("/openapi.json", headers=AUTH)).json()
        routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]
        assert len(routes) >= 18
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "x=1"}):
                response = await api.request(method, concrete(path), headers=headers, json={})
                expected = 200 if path == "/healthz" else 401
                assert response.status_code == expected, (method, path, headers)
        for path in ("/openapi.json", "/docs", "/no-such-route"):
            assert (await api.get(path)).status_code == 401


async def test_the_dashboard_cookie_opens_no_api_route(store: Store) -> None:
    async with client(store) as api:
        api.cookies.set(COOKIE, session_value(TOKEN))
        assert (await api.get("/ui")).status_code == 200
        assert (await api.get("/tasks")).status_code == 401
        assert (await api.get("/metrics")).status_code == 401


async def test_every_dashboard_route_refuses_without_a_session(store: Store) -> None:
    app = create_app(store, token=TOKEN)
    routes = [
        (method, r.path)
        for r in dashboard.routes
        if isinstance(r, APIRoute)
        for method in r.methods or ()
    ]
    assert len(routes) >= 15
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as ui:
        for method, path in routes:
            url = concrete(path).replace("/static/x", "/static/dashboard.js")
            response = await ui.request(method, url, headers=SAME)
            if path in ("/ui/login", "/ui/static/{name}"):
                assert response.status_code in (200, 303), path
                assert COOKIE not in response.headers.get("set-cookie", "")
            elif method == "GET":
                assert response.status_code == 303, path
                location = response.headers["location"]
                assert location.startswith("/ui/login?next="), path
            else:
                assert response.status_code == 401, (method, path)


async def test_login_sets_the_session_only_for_the_right_token(store: Store) -> None:
    async with client(store) as ui:
        wrong = await ui.post("/ui/login", data={"token": "nope"}, headers=SAME)
        assert wrong.headers["location"] == "/ui/login?failed=1&next=%2Fui"
        assert "set-cookie" not in wrong.headers
        right = await ui.post("/ui/login", data={"token": TOKEN}, headers=SAME)
        cookie = right.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={session_value(TOKEN)};")
        for flag in ("HttpOnly", "SameSite=strict", "Path=/;"):
            assert flag in cookie
        assert TOKEN not in cookie
        assert (await ui.get("/ui/workers")).status_code == 200


async def test_login_returns_to_the_page_asked_for_and_only_to_the_dashboard(
    store: Store,
) -> None:
    async with client(store) as ui:
        asked = await ui.get("/ui/tasks?status=dead&queue=q1")
        assert asked.status_code == 303
        form = await ui.get(asked.headers["location"])
        assert 'name="next" value="/ui/tasks?status=dead&amp;queue=q1"' in form.text
        assert "Log out" not in form.text
        back = await ui.post(
            "/ui/login",
            data={"token": TOKEN, "next": "/ui/tasks?status=dead&queue=q1"},
            headers=SAME,
        )
        assert back.headers["location"] == "/ui/tasks?status=dead&queue=q1"
        assert "Log out" in (await ui.get("/ui/tasks")).text
        for elsewhere in ("https://evil.test/ui", "//evil.test/ui", "/tasks", "/ui//evil.test"):
            away = await ui.post(
                "/ui/login", data={"token": TOKEN, "next": elsewhere}, headers=SAME
            )
            assert away.headers["location"] == "/ui", elsewhere


async def test_a_dashboard_session_reads_the_api_docs_and_nothing_else(store: Store) -> None:
    async with client(store) as api:
        for path in ("/docs", "/openapi.json", "/docs/static/swagger-ui-bundle.js"):
            refused = await api.get(path)
            assert refused.status_code == 401, path
            assert "log in at /ui/login" in refused.json()["detail"]
            assert (await api.get(path, headers=AUTH)).status_code == 200, path
        api.cookies.set(COOKIE, session_value(TOKEN))
        docs = await api.get("/docs")
        assert docs.status_code == 200
        assert "/docs/static/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        assert "http" not in docs.text.replace("http-equiv", "")
        assert (await api.get("/openapi.json")).json()["info"]["title"] == "Jobbers Manager"
        script = await api.get("/docs/static/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert "SwaggerUIBundle" in script.text
        assert (await api.get("/docs/static/../../pyproject.toml")).status_code in (401, 404)
        assert (await api.get("/docs/static/redoc.standalone.js")).status_code == 404
        assert (await api.get("/tasks")).status_code == 401
        api.cookies.set(COOKIE, session_value("another token"))
        assert (await api.get("/docs")).status_code == 401


@pytest.mark.parametrize("token", [TOKEN, None])
async def test_an_action_from_another_origin_fails(store: Store, token: str | None) -> None:
    async with client(store, token) as ui:
        if token:
            ui.cookies.set(COOKIE, session_value(token))
        task = (
            await ui.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}}, headers=AUTH)
        ).json()["id"]
        for headers in (
            {"Origin": "http://evil.test"},
            {"Referer": "http://evil.test/page"},
            {"Origin": "null"},
            {},
        ):
            refused = await ui.post(f"/ui/tasks/{task}/cancel", headers=headers)
            assert refused.status_code == 403, headers
            paused = await ui.post(
                "/ui/queues", data={"queue": "default", "action": "pause"}, headers=headers
            )
            assert paused.status_code == 403
        assert (await store.statuses([task]))[task] == "submitted"
        assert not any(q.config.paused for q in await store.queue_stats())
        same = await ui.post(f"/ui/tasks/{task}/cancel", headers={"Referer": f"{BASE}/ui/x"})
        assert same.status_code == 303
        assert (await store.statuses([task]))[task] == "cancelled"


async def test_without_a_token_pages_are_open_and_login_is_skipped(store: Store) -> None:
    async with client(store, token=None) as ui:
        for path in ("/ui", "/ui/tasks", "/ui/dead-letter", "/ui/queues", "/ui/workers"):
            page = await ui.get(path)
            assert page.status_code == 200, path
            assert "Log out" not in page.text
            assert f"{'/ui/static/favicon.svg'}" in page.text
        assert (await ui.get("/ui/login")).headers["location"] == "/ui"
        assert (await ui.get("/ui/static/favicon.svg")).headers["content-type"] == "image/svg+xml"
        assert (await ui.get("/docs")).status_code == 200
