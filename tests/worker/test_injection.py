"""Injected parameters in real worker processes: providers set up per attempt, shared within it,
torn down after the task (also when it fails), and replaced by an override."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobbers.injection import Depends
from jobbers.models import Status
from jobbers.registry import get_task
from jobbers.store.base import Store

from . import inject_tasks
from .conftest import TASKS, Spawn
from .support import new_task, read_log, submit, wait_statuses

pytestmark = pytest.mark.anyio

INJECT = "tests.worker.inject_tasks"


def test_injected_parameters_are_not_submission_parameters() -> None:
    schema = get_task("inject.ok").parameters
    assert set(schema["properties"]) == {"log"}
    assert schema["additionalProperties"] is False  # a submission passing `res` is refused
    assert set(get_task("inject.ok").injected) == {"res", "wrapper"}
    assert inject_tasks.inject_ok.name == "inject.ok"


async def test_teardown_runs_after_the_task_also_when_it_fails(
    store: Store, spawn: Spawn, log: Path
) -> None:
    worker = spawn(tasks=f"{TASKS},{INJECT}")
    await worker.registered(store)
    ok, fail, sync_fail = await submit(
        store,
        [
            new_task("inject.ok", log=str(log)),
            new_task("inject.fail", log=str(log)),
            new_task("inject.sync_fail", log=str(log)),
        ],
    )
    records = await wait_statuses(store, [ok], {Status.COMPLETED}, 20)
    assert records[ok].result == {"kind": "real", "shared": True, "task": ok, "attempt": 1}
    await wait_statuses(store, [fail, sync_fail], {Status.DEAD}, 20)
    lines = read_log(log)
    by_task: dict[str, list[tuple[str, int, str | None]]] = {}
    for line in lines:
        assert line["event"] == "teardown"
        by_task.setdefault(line["task"], []).append((line["kind"], line["attempt"], line["error"]))
    # One teardown per attempt (the provider shared by both parameters ran once), seeing how the
    # task ended; every attempt of the failing task tore down.
    assert by_task[ok] == [("real", 1, None)]
    assert by_task[fail] == [("real", 1, "ValueError"), ("real", 2, "ValueError")]
    assert by_task[sync_fail] == [("sync", 1, "KeyError")]
    record = (await store.get([fail]))[fail]
    assert record.error is not None
    assert record.error.type == "ValueError"  # the task's error, not the teardown's


async def test_an_override_replaces_the_provider(store: Store, spawn: Spawn, log: Path) -> None:
    worker = spawn(tasks=f"{TASKS},{INJECT},tests.worker.inject_override")
    await worker.registered(store)
    (ok,) = await submit(store, [new_task("inject.ok", log=str(log))])
    records = await wait_statuses(store, [ok], {Status.COMPLETED}, 20)
    assert records[ok].result == {"kind": "fake", "shared": True, "task": ok, "attempt": 1}
    assert [(x["kind"], x["task"]) for x in read_log(log)] == [("fake", ok)]


async def test_current_task_in_threads_and_child_processes(store: Store, spawn: Spawn) -> None:
    worker = spawn(tasks=f"{TASKS},{INJECT}")
    await worker.registered(store)
    names = ["inject.current_sync", "inject.current_isolated"]
    ids = await submit(store, [new_task(name) for name in names])
    records = await wait_statuses(store, ids, {Status.COMPLETED}, 20)
    for task_id, name in zip(ids, names, strict=True):
        assert records[task_id].result == {"task": task_id, "attempt": 1, "name": name}


def test_isolated_tasks_cannot_take_injected_parameters() -> None:
    from jobbers.registry import register_task

    def isolated(res: inject_tasks.Resource = Depends(inject_tasks.resource)) -> None:
        """Never registered."""

    with pytest.raises(ValueError, match="isolate='process' cannot take Depends"):
        register_task(isolated, name="inject.never", isolate="process")
