"""Tasks with injected parameters, for the worker process tests: each provider's teardown records
itself in the log file the task names, with the task it belonged to and how the task ended."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobbers import task
from jobbers.current import current_task
from jobbers.injection import Depends


@dataclass
class Resource:
    kind: str
    path: str | None = None
    notes: list[str] = field(default_factory=list)


def _record(res: Resource, event: str, error: BaseException | None) -> None:
    if res.path is None:
        return
    running = current_task()
    line = {
        "event": event,
        "kind": res.kind,
        "task": running.id,
        "attempt": running.attempt,
        "error": None if error is None else type(error).__name__,
    }
    with open(res.path, "a") as out:
        out.write(json.dumps(line) + "\n")


async def resource() -> AsyncIterator[Resource]:
    res = Resource("real")
    try:
        yield res
    except BaseException as exc:
        _record(res, "teardown", exc)
        raise
    _record(res, "teardown", None)


def sync_resource() -> Iterator[Resource]:
    res = Resource("sync")
    try:
        yield res
    except BaseException as exc:
        _record(res, "teardown", exc)
        raise
    _record(res, "teardown", None)


@dataclass
class Wrapper:
    inner: Resource


def wrapped(res: Resource = Depends(resource)) -> Wrapper:
    return Wrapper(res)


@task(name="inject.ok")
async def inject_ok(
    log: str, res: Resource = Depends(resource), wrapper: Wrapper = Depends(wrapped)
) -> dict[str, Any]:
    res.path = log
    running = current_task()
    return {
        "kind": res.kind,
        "shared": wrapper.inner is res,
        "task": running.id,
        "attempt": running.attempt,
    }


@task(name="inject.fail", max_retries=1, base_delay=0.0)
async def inject_fail(log: str, res: Resource = Depends(resource)) -> None:
    res.path = log
    raise ValueError("the task fails")


@task(name="inject.sync_fail")
def inject_sync_fail(log: str, res: Resource = Depends(sync_resource)) -> None:
    res.path = log
    raise KeyError("the sync task fails")


@task(name="inject.current_sync")
def current_sync() -> dict[str, Any]:
    """A sync body in its thread sees the task it runs in."""
    running = current_task()
    return {"task": running.id, "attempt": running.attempt, "name": running.name}


@task(name="inject.current_isolated", isolate="process")
def current_isolated() -> dict[str, Any]:
    """So does an isolated body in its child process."""
    running = current_task()
    return {"task": running.id, "attempt": running.attempt, "name": running.name}
