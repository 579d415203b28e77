"""Tasks the workflow tests run in real worker processes; each records what it did as one JSON
line on the ``log`` file it is given (one ``write`` on an ``O_APPEND`` file)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from jobbers.registry import TaskContext, task
from jobbers.workflows import FanOut, fan_out, step


def record(log: str, ctx: TaskContext, event: str, **fields: Any) -> None:
    line = {"event": event, "id": ctx.task_id, "attempt": ctx.attempt, "at": time.time(), **fields}
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@task(name="wf.add")
async def add(ctx: TaskContext, a: int, b: int, log: str) -> int:
    record(log, ctx, "add", a=a, b=b)
    return a + b


@task(name="wf.join")
async def join(ctx: TaskContext, log: str, parts: dict[str, int] | None = None) -> int:
    record(log, ctx, "join", parts=parts)
    return sum((parts or {}).values())


@task(name="wf.fail", max_retries=1, backoff="constant", base_delay=0.0)
async def fail(ctx: TaskContext, log: str) -> None:
    record(log, ctx, "fail")
    raise RuntimeError("failing on purpose")


@task(name="wf.handler")
async def handler(ctx: TaskContext, log: str, node: str) -> None:
    record(log, ctx, "handler", node=node)


@task(name="wf.slow")
async def slow(ctx: TaskContext, log: str, seconds: float) -> None:
    record(log, ctx, "slow")
    await asyncio.sleep(seconds)


@task(name="wf.spread", max_retries=2, backoff="constant", base_delay=0.0)
async def spread(ctx: TaskContext, log: str, n: int, nested: list[int], pause: float) -> FanOut:
    record(log, ctx, "spread", n=n)
    children = [step(leaf, log=log, i=i, deeper=i in nested, pause=pause) for i in range(n)]
    return fan_out(children, step(collect, log=log, level="top").inputs("values"))


@task(name="wf.leaf", max_retries=2, backoff="constant", base_delay=0.0)
async def leaf(ctx: TaskContext, log: str, i: int, deeper: bool, pause: float) -> int | FanOut:
    await asyncio.sleep(pause)
    if deeper:
        record(log, ctx, "leaf-spread", i=i)
        kids = [
            step(leaf, log=log, i=1000 * (i + 1) + k, deeper=False, pause=pause) for k in (0, 1)
        ]
        return fan_out(kids, step(collect, log=log, level=f"inner-{i}").inputs("values"))
    record(log, ctx, "leaf", i=i)
    return i


@task(name="wf.collect")
async def collect(ctx: TaskContext, log: str, level: str, values: list[Any] | None = None) -> int:
    got = values or []
    record(log, ctx, "collect", level=level, count=len(got), values=got)
    return len(got)
