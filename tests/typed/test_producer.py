"""Producers write straight into the store, with the API's validation, and wait without polling."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobbers.examples  # noqa: F401  (add, sleep)
from jobbers import APIError, AsyncProducer, Producer, TaskFailed
from jobbers.examples import add
from jobbers.models import Outcome
from jobbers.store.base import Report
from jobbers.store.sqlite import SQLiteStore
from jobbers.submitting import reset_defaults

WORKER = "test-host:1:abcd"


async def finish_all(path: Path, result: object) -> list[str]:
    """What a worker process would do: claim every waiting task and complete it."""
    store = SQLiteStore(str(path))
    try:
        claimed = await store.claim(WORKER, ["default"], 100, lease=30.0)
        reports = [Report(t.id, t.attempt, Outcome("completed", result=result)) for t in claimed]
        await store.finish(WORKER, reports)
        return [t.id for t in claimed]
    finally:
        await store.close()


def test_producer_validates_like_the_api(tmp_path: Path) -> None:
    with Producer(f"sqlite:///{tmp_path / 'p.db'}") as producer:
        with pytest.raises(APIError, match="'y'") as refused:
            producer.submit("add", {"x": 1})
        assert refused.value.status_code == 422
        with pytest.raises(APIError, match="unknown task name") as refused:
            producer.submit("no.such.task")
        assert refused.value.status_code == 404
        with pytest.raises(APIError, match="priority") as refused:
            producer.submit("add", {"x": 1, "y": 2}, priority="high")
        assert refused.value.status_code == 422
        task = producer.submit("add", {"x": 1, "y": 2}, id="p-1", priority=2)
        assert (task["id"], task["status"], task["priority"]) == ("p-1", "submitted", 2)
        assert producer.submit("add", {"x": 1, "y": 2}, id="p-1")["id"] == "p-1"
        both = producer.submit_many([{"name": "add", "kwargs": {"x": i, "y": 0}} for i in (1, 2)])
        assert [t["kwargs"]["x"] for t in both] == [1, 2]
        assert producer.get("p-1")["status"] == "submitted"


def test_producer_wait_returns_when_a_worker_finishes(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Producer(f"sqlite:///{path}") as producer:
        task = producer.submit("add", {"x": 1, "y": 2})
        with pytest.raises(TimeoutError, match="submitted"):
            producer.wait(task["id"], timeout=0.05)
        assert asyncio.run(finish_all(path, 3)) == [task["id"]]
        assert producer.wait(task["id"], timeout=10)["result"] == 3
        with pytest.raises(APIError, match="already completed") as refused:
            producer.cancel(task["id"])
        assert refused.value.status_code == 409


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "env.db"
    monkeypatch.setenv("JOBBERS_STORE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("JOBBERS_URL", "http://127.0.0.1:9")  # would fail: the store wins
    reset_defaults()
    try:
        yield path
    finally:
        reset_defaults()


def test_task_submit_uses_the_store_when_jobbers_store_url_is_set(store_env: Path) -> None:
    handle = add.submit(x=1, y=2)
    assert handle.status() == "submitted"
    assert asyncio.run(finish_all(store_env, 3)) == [handle.id]
    assert handle.result(timeout=10) == 3
    with pytest.raises(APIError, match="'x'") as refused:
        add.submit(x="one", y=2)  # type: ignore[arg-type]
    assert refused.value.status_code == 422


@pytest.mark.anyio
async def test_async_producer_handle(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with AsyncProducer(f"sqlite:///{path}") as producer:
        handle = await add.options(client=producer, id="a-1").submit_async(x=2, y=2)
        assert await handle.status() == "submitted"
        waiting = asyncio.create_task(handle.result(timeout=20))
        store = SQLiteStore(str(path))
        try:
            (claimed,) = await store.claim(WORKER, ["default"], 10, lease=30.0)
            failure = Outcome("cancelled")
            await store.finish(WORKER, [Report(claimed.id, claimed.attempt, failure)])
        finally:
            await store.close()
        with pytest.raises(TaskFailed, match="cancelled"):
            await waiting


def test_each_thread_gets_its_own_default_producer(store_env: Path) -> None:
    handles: dict[str, str] = {}

    def submit(name: str) -> None:
        handles[name] = add.submit(x=1, y=2).status()

    threads = [threading.Thread(target=submit, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert handles == {f"t{i}": "submitted" for i in range(4)}


def test_a_producer_refuses_other_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Producer(f"sqlite:///{tmp_path / 't.db'}") as producer:

        def use() -> None:
            try:
                producer.submit("add", {"x": 1, "y": 2})
            except RuntimeError as exc:
                errors.append(exc)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join(30)
    assert len(errors) == 1
    assert "one per thread" in str(errors[0])
