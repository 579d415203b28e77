"""Tasks that no live worker can run are shown where operators look: ``GET /queues``, the
dashboard's queue page and ``/metrics`` say how many wait and which names they are."""

from __future__ import annotations

import time

import pytest

from jobbers.cli.tables import unrunnable_text
from jobbers.ids import uuid7
from jobbers.models import NewTask, WorkerInfo
from jobbers.store.base import Store

from .conftest import asgi_client
from .test_metrics import samples

pytestmark = pytest.mark.anyio


async def test_queues_dashboard_and_metrics_name_what_no_worker_can_run(store: Store) -> None:
    now = time.time()
    old = WorkerInfo("old", "host", ("default",), now, now, 0, 4, ("add",))
    await store.register_worker(old, [])
    await store.submit([NewTask(uuid7(), name, {}) for name in ("add", "report.new", "report.new")])
    async with asgi_client(store) as api:
        [queue] = (await api.get("/queues")).json()["queues"]
        assert queue["unrunnable"] == {"report.new": 2}
        page = (await api.get("/ui/queues")).text
        assert "2 task(s) that no live worker can run (report.new)" in page
        metrics = samples((await api.get("/metrics")).text)
        key = ("jobbers_queue_unrunnable_tasks", (("name", "report.new"), ("queue", "default")))
        assert metrics[key] == 2
        fresh = WorkerInfo("new", "host", ("default",), now, now, 0, 4, ("add", "report.new"))
        await store.register_worker(fresh, [])
        [queue] = (await api.get("/queues")).json()["queues"]
        assert queue["unrunnable"] == {}
        assert "no live worker can run" not in (await api.get("/ui/queues")).text


def test_the_cli_says_how_many_and_which() -> None:
    assert unrunnable_text({}) == ""
    assert unrunnable_text({"b.new": 2, "a.new": 1}) == (
        "3 task(s) that no live worker can run (a.new, b.new)"
    )
