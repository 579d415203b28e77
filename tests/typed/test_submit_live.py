"""``task.submit()`` end to end: a real ``jobbers dev`` (Manager and worker) runs what the test
process submits through the typed API, the way an application would."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from jobbers import AsyncClient, Client, TaskFailed
from jobbers.submitting import reset_defaults
from tests.cli.conftest import DevServer, start_dev

TASKS = """
from jobbers import TaskContext, task


@task(name="typed.greet")
def greet(name: str, punctuation: str = "!") -> str:
    return f"Hello, {name}{punctuation}"


@task(name="typed.boom")
def boom() -> None:
    raise ValueError("no")


@task(name="typed.beat")
async def beat(ctx: TaskContext, n: int) -> int:
    ctx.heartbeat()
    return n * 2
"""


@pytest.fixture(scope="module")
def tasks_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, Path]]:
    folder = tmp_path_factory.mktemp("typed")
    name = f"typed_tasks_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(TASKS)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name), folder
    finally:
        sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def server(tasks_module: tuple[ModuleType, Path]) -> Iterator[DevServer]:
    module, folder = tasks_module
    dev = start_dev(folder, "--tasks", module.__name__, "--grace", "1")
    try:
        yield dev
    finally:
        assert dev.stop() == 0, dev.output()


@pytest.fixture
def tasks(
    tasks_module: tuple[ModuleType, Path], server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The module, with the default client pointed at the server through the environment."""
    monkeypatch.delenv("JOBBERS_STORE_URL", raising=False)
    monkeypatch.setenv("JOBBERS_URL", server.url)
    reset_defaults()
    try:
        yield tasks_module[0]
    finally:
        reset_defaults()


def test_submit_and_result_through_the_default_client(tasks: ModuleType) -> None:
    handle = tasks.greet.submit(name="Ada")
    assert handle.result(timeout=20) == "Hello, Ada!"
    assert handle.status() == "completed"
    assert tasks.greet.submit("Grace", punctuation="?").result(timeout=20) == "Hello, Grace?"


def test_a_typo_is_a_type_error_and_nothing_is_sent(tasks: ModuleType, server: DevServer) -> None:
    with Client(server.url) as client:
        before = len(client.list_tasks(limit=1000)["tasks"])
        with pytest.raises(TypeError, match="unexpected keyword argument 'nam'"):
            tasks.greet.submit(nam="x")
        with pytest.raises(TypeError, match="missing a required argument: 'name'"):
            tasks.greet.submit()
        assert len(client.list_tasks(limit=1000)["tasks"]) == before


def test_options_id_delay_and_cancel(tasks: ModuleType) -> None:
    task_id = f"typed-{uuid.uuid4().hex[:8]}"
    handle = tasks.greet.options(id=task_id, delay=60, priority=3).submit(name="Later")
    assert handle.id == task_id
    assert handle.submitted["priority"] == 3
    assert handle.status() == "scheduled"
    assert handle.cancel() is True
    assert handle.cancel() is False
    with pytest.raises(TaskFailed, match="cancelled"):
        handle.result(timeout=5)


def test_a_failed_task_raises_task_failed(tasks: ModuleType) -> None:
    with pytest.raises(TaskFailed, match="ValueError: no") as failed:
        tasks.boom.submit().result(timeout=20)
    assert failed.value.task["status"] in ("failed", "dead")


def test_a_task_with_a_context_is_submitted_without_one(tasks: ModuleType) -> None:
    assert tasks.beat.submit(n=21).result(timeout=20) == 42
    assert tasks.beat(n=4) is not None  # a direct call gets a local context


@pytest.mark.anyio
async def test_submit_async_with_an_explicit_client(tasks: ModuleType, server: DevServer) -> None:
    async with AsyncClient(server.url) as client:
        handle = await tasks.greet.options(client=client).submit_async(name="Async")
        assert await handle.result(timeout=20) == "Hello, Async!"
        assert await handle.status() == "completed"
        assert await handle.cancel() is False
