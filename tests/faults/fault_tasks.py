"""The tasks the fault suite's workers run. Each body writes what it did to its worker's journal
(``$JOBBERS_FAULT_JOURNAL``, one ``write`` per line on an ``O_APPEND`` file): ``s`` when it starts,
``e`` when it ends, ``c`` when it is cancelled or asked to stop. The checker reads these to count
bodies run twice and to see when a cut-off worker stopped. Results name the attempt and worker
that produced them, so a late result accepted from a fenced attempt would show."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from jobbers.registry import TaskContext, task

_FD: int | None = None


def journal(ctx: TaskContext, event: str) -> None:
    global _FD
    if _FD is None:
        path = os.environ.get("JOBBERS_FAULT_JOURNAL", os.devnull)
        _FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    line = {"e": event, "id": ctx.task_id, "a": ctx.attempt, "w": ctx.worker_id, "t": time.time()}
    os.write(_FD, (json.dumps(line) + "\n").encode())


def _result(ctx: TaskContext) -> dict[str, Any]:
    return {"a": ctx.attempt, "w": ctx.worker_id}


@task(name="fault.work")
async def work(ctx: TaskContext, ms: int) -> dict[str, Any]:
    journal(ctx, "s")
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        journal(ctx, "c")
        raise
    journal(ctx, "e")
    return _result(ctx)


@task(name="fault.sync_work")
def sync_work(ctx: TaskContext, ms: int) -> dict[str, Any]:
    """Sync: stops when asked (``ctx.cancel_requested``), as a cooperative body does."""
    journal(ctx, "s")
    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:
        if ctx.cancel_requested:
            journal(ctx, "c")
            return _result(ctx)
        time.sleep(0.005)
    journal(ctx, "e")
    return _result(ctx)
