"""Example tasks that ``jobbers dev`` loads, registered under short names to submit by hand.

They double as a tour: a sync function (run in a thread), async ones (run on the worker's loop),
one that fails, and one that reports liveness through its context.
"""

from __future__ import annotations

import asyncio
import time

from jobbers.registry import TaskContext, task


@task(name="add")
def add(x: float, y: float) -> float:
    return x + y


@task(name="sleep")
async def sleep(seconds: float = 1.0) -> float:
    await asyncio.sleep(seconds)
    return seconds


@task(name="sync_sleep")
def sync_sleep(seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return seconds


@task(name="fail", max_retries=2, backoff="constant", base_delay=0.5)
def fail(message: str = "failed on purpose") -> None:
    """Retried twice, then lands in the dead letter queue: a quick way to see both."""
    raise RuntimeError(message)


@task(name="heartbeat", max_heartbeat_interval=5.0)
async def heartbeat(ctx: TaskContext, seconds: float = 3.0, every: float = 0.5) -> int:
    """Beats while it works; stop beating for five seconds and the worker marks it stalled."""
    beats = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.heartbeat()
        beats += 1
        await asyncio.sleep(every)
    return beats
