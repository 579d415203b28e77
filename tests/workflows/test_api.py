"""The /workflows routes: a graph that cannot run is refused whole (422 naming the node,
nothing stored); Mermaid text round-trips through a run and its export with statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from jobbers.models import TaskFilter
from jobbers.store.base import Store

from .conftest import Spawn
from .test_runs import ended

pytestmark = pytest.mark.anyio


def graph(nodes: list[dict[str, Any]], edges: list[dict[str, str]]) -> dict[str, Any]:
    return {"name": "g", "nodes": nodes, "edges": edges}


def add(node: str, **kwargs: Any) -> dict[str, Any]:
    return {"id": node, "task": "wf.add", "kwargs": {"a": 1, "b": 2, "log": "/dev/null"} | kwargs}


async def nothing_stored(store: Store) -> None:
    assert (await store.runs(10)).runs == []
    assert (await store.query(TaskFilter(), 10)).tasks == []


@pytest.mark.parametrize(
    ("body", "node", "words"),
    [
        (
            graph(
                [add("a"), add("b"), add("c")],
                [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}],
            ),
            "b",
            "cycle",
        ),
        (
            graph([add("a"), {"id": "x", "task": "no.such.task"}], [{"from": "a", "to": "x"}]),
            "x",
            "unknown task",
        ),
        (graph([add("a"), add("b", a="one")], [{"from": "a", "to": "b"}]), "b", "'a'"),
        (graph([add("a"), add("b", extra=1)], [{"from": "a", "to": "b"}]), "b", "extra"),
        (graph([add("a"), add("a")], []), "a", "more than one node"),
        (
            graph([add("a"), {**add("b"), "inputs": "nope"}], [{"from": "a", "to": "b"}]),
            "b",
            "nope",
        ),
    ],
    ids=["cycle", "unknown-task", "bad-type", "unknown-kwarg", "duplicate-id", "bad-inputs"],
)
async def test_a_graph_that_cannot_run_is_refused_naming_the_node(
    api: httpx.AsyncClient, store: Store, body: dict[str, Any], node: str, words: str
) -> None:
    answer = await api.post("/workflows", json=body)
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["detail"]
    assert detail["loc"] == ["body", "nodes", node]
    assert f"node {node!r}" in detail["msg"]
    assert words in detail["msg"]
    await nothing_stored(store)


async def test_a_cycle_in_mermaid_text_is_refused_too(api: httpx.AsyncClient, store: Store) -> None:
    text = 'flowchart TD\n  a["wf.add(a=1, b=2, log=x)"] --> b["wf.add(a=1, b=2, log=x)"] --> a\n'
    answer = await api.post("/workflows", json={"mermaid": text})
    assert answer.status_code == 422
    assert "cycle" in answer.json()["detail"][0]["msg"]
    await nothing_stored(store)


async def test_mermaid_round_trips_through_a_run_and_its_export(
    api: httpx.AsyncClient, spawn: Spawn, log: Path
) -> None:
    text = f"""flowchart TD
    %% a diamond with an error handler
    a["wf.add(a=1, b=2, log='{log}')"] --> b["wf.add(a=3, b=4, log='{log}')"]
    a --> c["wf.add(a=5, b=6, log='{log}')"]
    b --> d["wf.join(log='{log}', parts=$parents)"]
    c --> d
    d -.-> h["wf.handler(log='{log}', node=d)"]
    """
    answer = await api.post("/workflows", json={"mermaid": text, "name": "round"})
    assert answer.status_code == 201, answer.text
    run = answer.json()
    spawn()
    await ended(api, run["id"])
    exported = await api.get(f"/workflows/{run['id']}", params={"format": "mermaid"})
    assert exported.status_code == 200
    body = exported.text
    assert 'd["wf.join(log=' in body
    assert "parts=$parents){completed}" in body
    assert "{cancelled}" in body  # the handler, skipped since d completed
    assert "d -.-> h" in body
    again = await api.post("/workflows", json={"mermaid": body, "name": "again"})
    assert again.status_code == 201, again.text
    second = again.json()
    shape = [(n["id"], n["task"], n["kwargs"], n["inputs"]) for n in run["nodes"]]
    assert [(n["id"], n["task"], n["kwargs"], n["inputs"]) for n in second["nodes"]] == shape
    assert second["edges"] == run["edges"]
    final = await ended(api, second["id"])
    assert final["status"] == "completed"
    assert {n["id"]: n["result"] for n in final["nodes"]}["d"] == 18


async def test_runs_are_listed_newest_first_with_filters_and_paging(
    api: httpx.AsyncClient, store: Store
) -> None:
    ids = []
    for _ in range(3):
        answer = await api.post("/workflows", json=graph([add("a")], []))
        ids.append(answer.json()["id"])
    cancelled = await api.post(f"/workflows/{ids[0]}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    first = (await api.get("/workflows", params={"limit": 2})).json()
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2]
    rest = (await api.get("/workflows", params={"limit": 2, "cursor": first["cursor"]})).json()
    assert [r["id"] for r in rest["runs"]] == [ids[0]]
    assert rest["cursor"] is None
    only = (await api.get("/workflows", params={"status": "cancelled"})).json()
    assert [r["id"] for r in only["runs"]] == [ids[0]]
    running = (await api.get("/workflows", params={"status": "running"})).json()
    assert [r["id"] for r in running["runs"]] == ids[:0:-1]
    assert (await api.get("/workflows/nope")).status_code == 404
    assert (await api.post("/workflows/nope/cancel")).status_code == 404
    assert (await api.get("/workflows", params={"bogus": 1})).status_code == 422


async def test_the_token_guards_every_workflow_route(store: Store) -> None:
    from jobbers.manager import create_app

    transport = httpx.ASGITransport(app=create_app(store, token="t0ken"))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        for method, path in [
            ("POST", "/workflows"),
            ("GET", "/workflows"),
            ("GET", "/workflows/x"),
            ("POST", "/workflows/x/cancel"),
        ]:
            assert (await client.request(method, path)).status_code == 401
        ok = await client.get("/workflows", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200


async def test_the_dashboard_workflow_pages_need_a_session(store: Store) -> None:
    from jobbers.manager import create_app

    transport = httpx.ASGITransport(app=create_app(store, token="t0ken"))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        for path in ("/ui/workflows", "/ui/workflows/x"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/ui/login?next={quote(path, safe='')}"
        assert (await client.post("/ui/workflows/x/cancel")).status_code == 403
