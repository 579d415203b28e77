"""Tasks the browser tests run in a real ``jobbers dev`` process."""

from __future__ import annotations

import asyncio
import logging

from jobbers.registry import TaskContext, task

log = logging.getLogger("ui.tasks")


@task(name="ui.steps", queue="default")
async def steps(ctx: TaskContext, steps: int, pause: float, password: str = "") -> int:
    """Reports progress and a log line per step, slowly enough for a person to watch."""
    for i in range(1, steps + 1):
        await asyncio.sleep(pause)
        ctx.progress(i / steps, f"step {i} of {steps}")
        log.info("step %d done with %s", i, password)
    return steps


@task(name="ui.block", queue="default")
async def block(ctx: TaskContext, seconds: float = 120.0) -> None:
    ctx.progress(0.1, "blocking")
    await asyncio.sleep(seconds)


@task(name="ui.fail", queue="default")
async def fail(reason: str = "boom") -> None:
    raise RuntimeError(reason)


@task(name="ui.secretive", queue="default")
def secretive(password: str, token: str, fail: bool = False) -> dict[str, object]:
    """Logs and returns its secrets, as careless task code does: none may reach a page or log."""
    log.info("connecting with %s and %s", password, token)
    log.warning("token=%s", token)
    if fail:
        raise PermissionError(f"login refused for {password}")
    return {"token": token, "rows": 3}
