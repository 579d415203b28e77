"""A Manager whose store does not answer says so: /healthz and every route answer 503."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobbers.store.sqlite import SQLiteStore

from .conftest import TOKEN, asgi_client

pytestmark = pytest.mark.anyio


async def test_healthz_is_200_while_the_store_answers_and_503_once_it_is_gone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "health.db"
    store = SQLiteStore(str(path))
    try:
        async with asgi_client(store, token=TOKEN) as api:
            ok = await api.get("/healthz")
            assert ok.status_code == 200
            assert ok.json() == {"status": "ok"}
            path.unlink()
            gone = await api.get("/healthz")
            assert gone.status_code == 503
            assert "removed or replaced" in gone.json()["detail"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("method", "route"),
    [("GET", "/tasks"), ("GET", "/tasks/x"), ("GET", "/queues"), ("POST", "/tasks/x/cancel")],
)
async def test_routes_answer_503_with_the_stores_line_when_it_cannot_be_opened(
    method: str, route: str, tmp_path: Path
) -> None:
    store = SQLiteStore(str(tmp_path / "missing" / "x.db"))
    try:
        async with asgi_client(store) as api:
            answer = await api.request(method, route)
            assert answer.status_code == 503
            assert "does not exist" in answer.json()["detail"]
            health = await api.get("/healthz")
            assert health.status_code == 503
            assert health.json()["detail"] == answer.json()["detail"]
    finally:
        await store.close()
