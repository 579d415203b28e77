"""The /schedules routes: create, read, change, delete; next fire times; 422 for bad input with
nothing stored; the token required."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from jobbers import task
from jobbers.store.base import Store

from .conftest import TOKEN, asgi_client

pytestmark = pytest.mark.anyio

NIGHTLY = {
    "id": "nightly",
    "cron": "30 2 * * *",
    "timezone": "Europe/Paris",
    "target": {"task": "add", "kwargs": {"x": 1, "y": 2}, "queue": "reports"},
}


async def test_create_list_read_update_delete(api: httpx.AsyncClient, store: Store) -> None:
    created = await api.post("/schedules", json=NIGHTLY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == "nightly"
    assert (body["enabled"], body["misfire"], body["concurrency"]) == (True, "skip", "always")
    assert len(body["next_fires"]) == 5
    assert body["next_fire"] == body["next_fires"][0]
    for shown in body["next_fires"]:
        local = datetime.fromisoformat(shown).astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute, local.second) == (2, 30, 0)
    stored = await store.get_schedule("nightly")
    assert stored is not None
    assert stored.target["queue"] == "reports"

    assert (await api.post("/schedules", json=NIGHTLY)).status_code == 409
    listed = (await api.get("/schedules")).json()["schedules"]
    assert [s["id"] for s in listed] == ["nightly"]
    assert (await api.get("/schedules/nightly")).json()["cron"] == "30 2 * * *"

    disabled = await api.put("/schedules/nightly", json={"enabled": False})
    assert disabled.status_code == 200
    assert (disabled.json()["enabled"], disabled.json()["next_fire"]) == (False, None)
    assert disabled.json()["next_fires"] == []
    enabled = await api.put("/schedules/nightly", json={"enabled": True, "cron": "0 * * * * *"})
    assert enabled.json()["next_fire"] is not None
    assert enabled.json()["cron"] == "0 * * * * *"

    assert (await api.delete("/schedules/nightly")).status_code == 204
    assert (await api.get("/schedules/nightly")).status_code == 404
    assert (await api.delete("/schedules/nightly")).status_code == 404
    assert (await api.put("/schedules/nightly", json={"enabled": True})).status_code == 404


#: A workflow target that cannot run: b and c wait for each other.
CYCLE = {
    "name": "loop",
    "nodes": [{"id": n, "task": "add", "kwargs": {"x": 1, "y": 2}} for n in "abc"],
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}],
}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"cron": "61 * * * *"}, ["body", "cron"]),
        ({"cron": "* * *"}, ["body", "cron"]),
        ({"cron": "0 0 31 2 *"}, ["body", "cron"]),  # never fires
        ({"timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({"target": {"task": "no.such.task"}}, ["body", "target"]),
        (
            {"target": {"task": "add", "kwargs": {"x": "one", "y": 2}}},
            ["body", "target", "kwargs", "x"],
        ),
        ({"target": {"task": "add", "kwargs": {"x": 1}}}, ["body", "target", "kwargs", "y"]),
        ({"target": {"kwargs": {}}}, ["body", "target"]),
        ({"target": {"task": "add", "kwargs": {"x": 1, "y": 2}, "delay": 5}}, ["body", "target"]),
        ({"misfire": "sometimes"}, ["body", "misfire"]),
        ({"target": {"workflow": CYCLE}}, ["body", "target"]),
        ({"target": {"task": "add", "workflow": CYCLE}}, ["body", "target"]),
    ],
)
async def test_bad_input_is_422_and_nothing_is_stored(
    api: httpx.AsyncClient, store: Store, change: dict[str, object], where: list[object]
) -> None:
    response = await api.post("/schedules", json={**NIGHTLY, **change})
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(d["loc"][: len(where)] == where for d in details), details
    assert await store.schedules() == []
    # the same refusal for a change to a stored schedule, which stays as it was
    assert (await api.post("/schedules", json=NIGHTLY)).status_code == 201
    assert (await api.put("/schedules/nightly", json=change)).status_code == 422
    stored = await store.get_schedule("nightly")
    assert stored is not None
    assert (stored.cron, stored.timezone, stored.target) == (
        NIGHTLY["cron"],
        NIGHTLY["timezone"],
        NIGHTLY["target"],
    )


@task(name="sched.fetch", secrets=("key",))
def fetch(url: str, key: str, api_token: str) -> None:
    """Takes two secrets: one declared, one by its name."""


async def test_secret_kwargs_are_masked(api: httpx.AsyncClient, store: Store) -> None:
    kwargs = {"url": "https://example.test", "key": "k3y", "api_token": "t0p"}
    body = {**NIGHTLY, "target": {"task": "sched.fetch", "kwargs": kwargs}}
    created = await api.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    for shown in (created.json(), (await api.get("/schedules/nightly")).json()):
        assert shown["target"]["kwargs"] == {"url": kwargs["url"], "key": "***", "api_token": "***"}
    stored = await store.get_schedule("nightly")
    assert stored is not None
    assert stored.target["kwargs"] == kwargs  # masked when shown, kept as given


async def test_every_route_needs_the_token(store: Store) -> None:
    async with asgi_client(store, token=TOKEN) as api:
        calls = [
            api.get("/schedules"),
            api.post("/schedules", json=NIGHTLY),
            api.get("/schedules/nightly"),
            api.put("/schedules/nightly", json={"enabled": False}),
            api.delete("/schedules/nightly"),
        ]
        for call in calls:
            assert (await call).status_code == 401
        assert await store.schedules() == []
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert (await api.post("/schedules", json=NIGHTLY, headers=headers)).status_code == 201
