"""Workflow runs end to end: submitted through the API, run by real worker processes, on
every store backend."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobbers.workflows import Workflow, step

from ..worker.support import wait_for
from . import flow_tasks as t
from .conftest import Spawn, lines

pytestmark = pytest.mark.anyio


async def submit(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post("/workflows", json=body)
    assert answer.status_code == 201, answer.text
    run: dict[str, Any] = answer.json()
    return run


async def ended(api: httpx.AsyncClient, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def done() -> bool:
        found.update((await api.get(f"/workflows/{run_id}")).json())
        return bool(found["status"] != "running")

    await wait_for(done, timeout, f"run {run_id} to end", step=0.05)
    return found


async def test_a_diamond_runs_its_join_once_after_both_parents_with_their_results(
    api: httpx.AsyncClient, spawn: Spawn, log: Path
) -> None:
    a = step(t.add, a=1, b=2, log=str(log)).named("a")
    b = step(t.add, a=10, b=20, log=str(log)).named("b")
    c = step(t.add, a=100, b=200, log=str(log)).named("c")
    d = step(t.join, log=str(log)).named("d").inputs("parts")
    a >> [b, c] >> d
    run = await submit(api, Workflow("diamond", a).to_json())
    assert {n["id"]: n["status"] for n in run["nodes"]} == {
        "a": "submitted",
        "b": "waiting",
        "c": "waiting",
        "d": "waiting",
    }
    spawn()
    final = await ended(api, run["id"])
    assert final["status"] == "completed"
    assert {n["id"]: n["result"] for n in final["nodes"]} == {"a": 3, "b": 30, "c": 300, "d": 330}
    done = lines(log)
    joins = [line for line in done if line["event"] == "join"]
    assert len(joins) == 1
    assert joins[0]["parts"] == {"b": 30, "c": 300}
    adds = [line for line in done if line["event"] == "add"]
    assert len(adds) == 3
    assert all(line["at"] <= joins[0]["at"] for line in adds)


async def test_a_fan_out_of_50_with_nested_fan_outs_collects_once_despite_a_killed_worker(
    api: httpx.AsyncClient, spawn: Spawn, log: Path
) -> None:
    root = step(t.spread, log=str(log), n=50, nested=[5, 17, 33], pause=0.05).named("spread")
    after = step(t.join, log=str(log)).named("after").inputs("parts")
    root >> after
    run = await submit(api, Workflow("fan", root).to_json())
    victim = spawn(concurrency=4, lease=1.0)
    survivor = spawn(concurrency=4, lease=1.0)

    async def halfway() -> bool:
        return sum(1 for line in lines(log) if line["event"] == "leaf") >= 15

    await wait_for(halfway, 30, "a third of the leaves to run")
    victim.signal(signal.SIGKILL)
    victim.wait(10)
    final = await ended(api, run["id"], timeout=60)
    assert survivor.proc.poll() is None
    assert final["status"] == "completed"
    done = lines(log)
    top = [line for line in done if line["event"] == "collect" and line["level"] == "top"]
    assert len(top) == 1, top
    inner = [line for line in done if line["event"] == "collect" and line["level"] != "top"]
    assert sorted(line["level"] for line in inner) == ["inner-17", "inner-33", "inner-5"]
    leaves = {line["i"] for line in done if line["event"] == "leaf"}
    deep = {1000 * (i + 1) + k for i in (5, 17, 33) for k in (0, 1)}
    assert leaves == (set(range(50)) - {5, 17, 33}) | deep
    last_leaf = max(line["at"] for line in done if line["event"] in ("leaf", "collect")
                    and line.get("level") != "top")  # fmt: skip
    assert top[0]["at"] >= last_leaf
    assert top[0]["count"] == 50
    # the collector stood in for the fan-out node: what waited on it got its result
    assert {n["id"]: n["result"] for n in final["nodes"]}["after"] == 50
    assert len(final["tasks"]) == 50 + 6 + 3 + 1


async def test_a_node_failing_after_its_retries_runs_its_handler_and_fails_the_run(
    api: httpx.AsyncClient, spawn: Spawn, log: Path
) -> None:
    bad = step(t.fail, log=str(log)).named("bad")
    bad.on_error(step(t.handler, log=str(log), node="bad").named("on_bad"))
    never = step(t.add, a=1, b=1, log=str(log)).named("never")
    fine = step(t.add, a=2, b=2, log=str(log)).named("fine")
    fine.on_error(step(t.handler, log=str(log), node="fine").named("on_fine"))
    bad >> never
    run = await submit(api, Workflow("fails", bad, fine).to_json())
    spawn()
    final = await ended(api, run["id"])
    assert final["status"] == "failed"
    statuses = {n["id"]: n["status"] for n in final["nodes"]}
    assert statuses == {
        "bad": "dead",
        "on_bad": "completed",
        "never": "cancelled",
        "fine": "completed",
        "on_fine": "cancelled",
    }
    done = lines(log)
    assert [line["event"] for line in done].count("fail") == 2  # one retry
    assert [line["node"] for line in done if line["event"] == "handler"] == ["bad"]
    assert [line["a"] for line in done if line["event"] == "add"] == [2]


async def test_a_cancelled_run_starts_nothing_new(
    api: httpx.AsyncClient, spawn: Spawn, log: Path
) -> None:
    first = step(t.slow, log=str(log), seconds=30).named("first")
    first >> step(t.add, a=1, b=1, log=str(log)).named("next")
    first.on_error(step(t.handler, log=str(log), node="first").named("on_first"))
    run = await submit(api, Workflow("cancel", first).to_json())
    spawn()

    async def started() -> bool:
        return any(line["event"] == "slow" for line in lines(log))

    await wait_for(started, 15, "the first node to start")
    answer = await api.post(f"/workflows/{run['id']}/cancel")
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    final = await ended(api, run["id"])
    assert {n["status"] for n in final["nodes"]} == {"cancelled"}
    # a later task on the same workers runs, so they are live: the cancelled run's did not
    probe = await submit(api, Workflow("probe", step(t.add, a=7, b=7, log=str(log))).to_json())
    await ended(api, probe["id"])
    assert [line["event"] for line in lines(log)] == ["slow", "add"]
    assert [line["a"] for line in lines(log) if line["event"] == "add"] == [7]
