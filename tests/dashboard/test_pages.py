"""The dashboard's pages over each store backend, through the real app (no browser): re-run of a
finished task linked both ways, cancel from the task list (selected and all matching), a
worker's page, the warnings, every served queue listed, the list's columns and chart ranges,
and a workflow run followed and cancelled from its pages."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from jobbers.manager import create_app
from jobbers.models import JSON, Edge, NewTask, Outcome, RetryPolicy, Run, Status, WorkerInfo
from jobbers.store.base import Report, Store

pytestmark = pytest.mark.anyio

BASE = "http://jobbers.test"
SAME = {"Origin": BASE}


@pytest.fixture
async def ui(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def submit(store: Store, task_id: str, queue: str = "default", **kwargs: object) -> None:
    await store.submit([NewTask(task_id, "work.thing", dict(kwargs), queue=queue)])


async def run(store: Store, worker: str, queue: str, outcome: Outcome) -> str:
    (task,) = await store.claim(worker, [queue], 1, 30.0)
    await store.finish(worker, [Report(task.id, task.attempt, outcome)])
    return task.id


async def register(store: Store, worker: str, queues: tuple[str, ...], seen: float) -> None:
    info = WorkerInfo(worker, "box-1", queues, seen - 5, seen, 0, 4)
    await store.register_worker(info, [], now=seen)


async def test_rerun_a_finished_task_links_both_ways(store: Store, ui: httpx.AsyncClient) -> None:
    await submit(store, "orig", x=1, db_password="pw")
    await run(store, "host:11:ab", "default", Outcome("completed", result=2))
    first = await ui.post("/ui/tasks/orig/rerun", headers=SAME)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/ui/tasks/orig.rerun-1?")
    (again,) = (await store.get(["orig.rerun-1"])).values()
    assert (again.name, again.kwargs, again.status) == (
        "work.thing",
        {"x": 1, "db_password": "pw"},
        Status.SUBMITTED,
    )
    await ui.post("/ui/tasks/orig/rerun", headers=SAME)
    assert set(await store.statuses(["orig.rerun-1", "orig.rerun-2"])) == {
        "orig.rerun-1",
        "orig.rerun-2",
    }
    page = (await ui.get("/ui/tasks/orig")).text
    reruns = re.search(r'<dd id="reruns">(.*?)</dd>', page, re.S)
    assert reruns is not None
    assert "orig.rerun-1" in reruns.group(1)
    assert "orig.rerun-2" in reruns.group(1)
    child = (await ui.get("/ui/tasks/orig.rerun-1")).text
    assert re.search(r'<dd id="rerun-of"><a href="/ui/tasks/orig">orig</a></dd>', child)
    assert 'id="rerun"' not in child  # not finished yet: nothing to re-run
    refused = await ui.post("/ui/tasks/orig.rerun-1/rerun", headers=SAME)
    assert "only+finished+tasks" in refused.headers["location"]
    assert "orig.rerun-1.rerun-1" not in await store.statuses(["orig.rerun-1.rerun-1"])


async def test_cancel_selected_and_all_matching_from_the_list(
    store: Store, ui: httpx.AsyncClient
) -> None:
    for i in range(4):
        await submit(store, f"a{i}", queue="qa")
    await submit(store, "b0", queue="qb")
    one = await ui.post("/ui/tasks/cancel", data={"ids": "a0"}, headers=SAME)
    assert "cancelled+1+task" in one.headers["location"]
    assert (await store.statuses(["a0", "a1"])) == {"a0": "cancelled", "a1": "submitted"}
    every = await ui.post("/ui/tasks/cancel", data={"all": "1", "queue": "qa"}, headers=SAME)
    assert "cancelled+3+task" in every.headers["location"]
    assert "queue=qa" in every.headers["location"]
    found = await store.statuses(["a1", "a2", "a3", "b0"])
    assert found == {"a1": "cancelled", "a2": "cancelled", "a3": "cancelled", "b0": "submitted"}


async def test_the_list_shows_wait_duration_masked_preview_and_summary(
    store: Store, ui: httpx.AsyncClient
) -> None:
    await submit(store, "t-ok", x=41, api_key="hidden-key")
    await run(store, "host:12:cd", "default", Outcome("completed", result={"answer": 42}))
    await submit(store, "t-other", queue="else")
    page = (await ui.get("/ui/tasks")).text
    assert "hidden-key" not in page
    row = re.search(r'<tr data-id="t-ok">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = row.group(1)
    assert "api_key=***" in cells
    assert "x=41" in cells
    assert "{&#34;answer&#34;: 42}" in cells
    assert 'href="/ui/workers/host%3A12%3Acd"' in cells
    assert re.search(r'class="duration">\d+ ms<', cells)
    by_worker = (await ui.get("/ui/tasks?worker=host:12:cd")).text
    assert 'data-id="t-ok"' in by_worker
    assert 'data-id="t-other"' not in by_worker
    by_name = (await ui.get("/ui/tasks?sort=name&order=asc&since=1h")).text
    assert 'data-id="t-ok"' in by_name
    assert "newest 2000" in by_name


async def test_a_worker_page_and_its_links(store: Store, ui: httpx.AsyncClient) -> None:
    now = time.time()
    worker = "box-1:4242:beef"
    await register(store, worker, ("default", "spare"), now)
    await submit(store, "done")
    await run(store, worker, "default", Outcome("completed", result=1))
    await submit(store, "running")
    (task,) = await store.claim(worker, ["default"], 1, 30.0)
    page = (await ui.get(f"/ui/workers/{worker}")).text
    assert '<dd id="worker-pid">4242</dd>' in page
    assert '<dd id="worker-state">alive</dd>' in page
    assert '<dd id="worker-processed">1</dd>' in page
    assert 'data-id="running"' in page
    assert 'data-id="done"' in page
    assert "of 4 busy" in page
    listing = (await ui.get("/ui/workers")).text
    assert f'href="/ui/workers/{worker.replace(":", "%3A")}"' in listing
    detail = (await ui.get(f"/ui/tasks/{task.id}")).text
    assert f'href="/ui/workers/{worker.replace(":", "%3A")}"' in detail
    gone = await ui.get("/ui/workers/no-such-worker")
    assert gone.status_code == 303


async def test_warnings_and_every_served_queue(store: Store, ui: httpx.AsyncClient) -> None:
    now = time.time()
    await register(store, "box-1:1:aa", ("default", "only-served"), now)
    await register(store, "box-1:2:bb", ("quiet",), now - 120)
    await submit(store, "stranded", queue="orphan")
    queues = (await ui.get("/ui/queues")).text
    for name in ("default", "only-served", "quiet", "orphan"):
        assert f'<tr data-queue="{name}">' in queues, name
    assert re.search(r'data-kind="no-worker" data-subject="orphan"', queues)
    assert "queue orphan has 1 waiting task(s) and no live worker serves it" in queues
    assert re.search(r'data-kind="silent" data-subject="box-1:2:bb"', queues)
    assert 'data-subject="default"' not in queues
    overview = (await ui.get("/ui")).text
    assert 'data-kind="no-worker" data-subject="orphan"' in overview
    paused = await ui.post(
        "/ui/queues", data={"queue": "only-served", "action": "pause"}, headers=SAME
    )
    assert paused.status_code == 303
    assert [
        q.config.paused for q in await store.queue_stats() if q.config.name == "only-served"
    ] == [True]


async def test_chart_ranges_and_the_breakdown_by_name(store: Store, ui: httpx.AsyncClient) -> None:
    await submit(store, "fine")
    await run(store, "host:13:ef", "default", Outcome("completed", result=1))
    dropped = RetryPolicy(dead_letter="drop")
    await store.submit([NewTask("bad", "work.thing", {}, policy=dropped)])
    await run(store, "host:13:ef", "default", Outcome("failed"))
    await submit(store, "worse")
    await run(store, "host:13:ef", "default", Outcome("failed"))
    for key in ("15m", "1h", "24h", "7d"):
        page = (await ui.get(f"/ui?range={key}")).text
        assert f'data-range="{key}" viewBox' in page, key
        assert re.search(rf'<a href="/ui\?range={key}" data-range="{key}" class="here"', page)
    page = (await ui.get("/ui?range=24h")).text
    row = re.search(r'<tr data-name="work.thing">(.*?)</tr>', page, re.S)
    assert row is not None
    assert "<td>3</td><td>67%</td>" in row.group(1)
    failed_card = re.search(r'data-status="failed">(\d+)<', page)
    failed_range = re.search(r'id="failed-range">(\d+)<', page)
    assert failed_card
    assert failed_range
    assert failed_card.group(1) == failed_range.group(1) == "1"
    assert re.search(r'data-status="dead">1<', page)
    assert re.search(r'id="dead-range">1<', page)
    assert (await ui.get("/ui?range=bogus")).status_code == 200


async def test_a_warning_for_tasks_no_live_worker_can_run(
    store: Store, ui: httpx.AsyncClient
) -> None:
    now = time.time()
    info = WorkerInfo("box-1:3:cc", "box-1", ("default",), now, now, 0, 4, tasks=("other",))
    await store.register_worker(info, [], now=now)
    await submit(store, "nobody-has-the-code")
    page = (await ui.get("/ui/queues")).text
    warning = re.search(r'data-kind="unrunnable" data-subject="default">(.*?)</li>', page, re.S)
    assert warning is not None
    assert "no live worker has the code for work.thing (1)" in warning.group(1)
    assert 'data-kind="no-worker"' not in page


async def test_sorting_orders_the_rows(store: Store, ui: httpx.AsyncClient) -> None:
    for task_id, name in (("s1", "b.task"), ("s2", "c.task"), ("s3", "a.task")):
        await store.submit([NewTask(task_id, name, {})])
    newest = re.findall(r'<tr data-id="(s\d)">', (await ui.get("/ui/tasks")).text)
    assert newest == ["s3", "s2", "s1"]
    by_name = re.findall(
        r'<tr data-id="(s\d)">', (await ui.get("/ui/tasks?sort=name&order=asc")).text
    )
    assert by_name == ["s3", "s1", "s2"]
    down = re.findall(
        r'<tr data-id="(s\d)">', (await ui.get("/ui/tasks?sort=name&order=desc")).text
    )
    assert down == ["s2", "s1", "s3"]


async def test_the_workflow_pages_follow_a_run_and_cancel_it(
    store: Store, ui: httpx.AsyncClient
) -> None:
    first = NewTask("wf-a", "work.thing", {}, run="r1")
    then = NewTask("wf-b", "work.thing", {}, after=(Edge("wf-a", "a"),), run="r1")
    graph: dict[str, JSON] = {
        "name": "nightly",
        "nodes": [{"id": "a", "task": "work.thing"}, {"id": "b", "task": "work.thing"}],
        "edges": [{"from": "a", "to": "b", "on": "completed"}],
        "tasks": {"a": "wf-a", "b": "wf-b"},
    }
    await store.create_run(Run("r1", "nightly", time.time(), graph), [first, then])
    listed = (await ui.get("/ui/workflows")).text
    assert re.search(r'href="/ui/workflows/r1".*?status-running', listed, re.S)
    await run(store, "host:1:aa", "default", Outcome("completed", result=1))
    page = (await ui.get("/ui/workflows/r1")).text
    nodes = dict(re.findall(r'data-node="(\w)">.*?status-(\w+)', page, re.S))
    assert nodes == {"a": "completed", "b": "submitted"}
    done = await ui.post("/ui/workflows/r1/cancel", headers=SAME)
    assert done.status_code == 303
    assert "cancelled+1+task" in done.headers["location"]
    assert await store.statuses(["wf-b"]) == {"wf-b": Status.CANCELLED}
    assert "status-cancelled" in (await ui.get("/ui/workflows")).text
