"""The next release of :mod:`tests.faults.fault_tasks`: the same tasks and one more, as a
rolling deploy brings it to workers one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from jobbers.registry import TaskContext, task

from .fault_tasks import _result, journal, sync_work, work

__all__ = ["new_work", "sync_work", "work"]


@task(name="fault.new_work")
async def new_work(ctx: TaskContext, ms: int) -> dict[str, Any]:
    journal(ctx, "s")
    await asyncio.sleep(ms / 1000)
    journal(ctx, "e")
    return _result(ctx)
