"""Tasks that the worker process tests run in real worker processes.

Each writes what it did as one JSON line to the ``log`` file it is given (one ``write`` on an
``O_APPEND`` file, so lines from many processes and threads never interleave); the tests read
those lines to assert timing and exactly-once execution.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import signal
import time
from typing import Any

from jobbers.registry import TaskContext, on_worker_start, task


def record(log: str, ctx: TaskContext, event: str, **fields: Any) -> float:
    at = time.time()
    line = {"event": event, "id": ctx.task_id, "attempt": ctx.attempt, "at": at, **fields}
    data = (json.dumps(line) + "\n").encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return at


@on_worker_start
async def note_worker_start() -> None:
    """Records the worker's start in ``$JOBBERS_TEST_START_LOG`` when set; raises when
    ``$JOBBERS_TEST_START_FAIL`` is set (a start hook that fails must not stop the worker)."""
    if os.environ.get("JOBBERS_TEST_START_FAIL"):
        raise RuntimeError("start hook failed on purpose")
    path = os.environ.get("JOBBERS_TEST_START_LOG")
    if path:
        await asyncio.sleep(0)  # an async hook, awaited by the worker
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)


@task(name="wt.sleep_async", max_retries=3, backoff="constant", base_delay=0.0)
async def sleep_async(ctx: TaskContext, seconds: float, log: str) -> dict[str, float]:
    start = record(log, ctx, "start")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record(log, ctx, "cancelled")
        raise
    return {"start": start, "end": record(log, ctx, "end")}


@task(name="wt.sleep_sync", max_retries=3, backoff="constant", base_delay=0.0)
def sleep_sync(ctx: TaskContext, seconds: float, log: str) -> dict[str, float]:
    start = record(log, ctx, "start")
    time.sleep(seconds)
    return {"start": start, "end": record(log, ctx, "end", cancel_requested=ctx.cancel_requested)}


@task(name="wt.busy")
def busy(ctx: TaskContext, seconds: float, log: str) -> int:
    """Pure-Python CPU work holding the GIL most of the time."""
    record(log, ctx, "start")
    deadline = time.monotonic() + seconds
    loops = 0
    while time.monotonic() < deadline:
        loops += sum(range(1000)) > 0
    return loops


@task(name="wt.mark")
async def mark(ctx: TaskContext, log: str, seconds: float = 0.0) -> str:
    record(log, ctx, "ran")
    await asyncio.sleep(seconds)
    return ctx.task_id


@task(name="wt.fail")
def fail(
    ctx: TaskContext, log: str, error: str = "ValueError", fixed_flag: str | None = None
) -> str:
    """Raises the builtin exception named ``error`` until ``fixed_flag`` exists."""
    record(log, ctx, "start")
    if fixed_flag is not None and os.path.exists(fixed_flag):
        return "fixed"
    exc_type = getattr(builtins, error)
    raise exc_type(f"attempt {ctx.attempt} failed on purpose")


@task(name="wt.stop_beating", max_heartbeat_interval=0.5, max_retries=1, base_delay=0.0)
async def stop_beating(ctx: TaskContext, log: str, beat_for: float) -> str:
    """Beats every 0.1 s for ``beat_for`` seconds, then hangs silently on its first attempt."""
    record(log, ctx, "start")
    if ctx.attempt > 1:
        return "recovered"
    deadline = time.monotonic() + beat_for
    while time.monotonic() < deadline:
        ctx.heartbeat()
        await asyncio.sleep(0.1)
    record(log, ctx, "silent")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        record(log, ctx, "cancelled")
        raise
    return "never"


@task(name="wt.slow", timeout=0.5)
async def slow(ctx: TaskContext, seconds: float, log: str) -> str:
    record(log, ctx, "start")
    await asyncio.sleep(seconds)
    return "too late"


@task(name="wt.slow_sync", timeout=0.5)
def slow_sync(ctx: TaskContext, seconds: float, log: str) -> str:
    record(log, ctx, "start")
    time.sleep(seconds)
    return "too late"


@task(name="wt.cancel_itself", max_retries=3)
async def cancel_itself() -> None:
    raise asyncio.CancelledError


@task(name="wt.unserialisable")
def unserialisable() -> object:
    return object()


@task(name="wt.isolated_sleep", isolate="process")
def isolated_sleep(ctx: TaskContext, seconds: float, log: str) -> dict[str, Any]:
    """Runs in a child process: logs its pid, so a test can watch that process go away."""
    record(log, ctx, "start", pid=os.getpid(), parent=os.getppid())
    print("a line the task prints: it must not disturb the worker's protocol")
    time.sleep(seconds)
    record(log, ctx, "end")
    return {"slept": seconds, "pid": os.getpid()}


@task(name="wt.isolated_slow", isolate="process", timeout=3.0)
def isolated_slow(ctx: TaskContext, seconds: float, log: str) -> str:
    record(log, ctx, "start", pid=os.getpid())
    time.sleep(seconds)
    record(log, ctx, "end")
    return "too late"


@task(name="wt.isolated_fail", isolate="process", max_retries=1, retry_on=(OSError,))
def isolated_fail(ctx: TaskContext, log: str) -> None:
    record(log, ctx, "start", pid=os.getpid())
    raise ConnectionResetError(f"attempt {ctx.attempt} failed in a child process")


@task(name="wt.big_result", max_retries=2)
def big_result(ctx: TaskContext, mib: int, log: str) -> str:
    record(log, ctx, "start")
    return "x" * (mib << 20)


@task(name="wt.isolated_big_result", isolate="process", max_retries=2)
def isolated_big_result(ctx: TaskContext, mib: int, log: str) -> str:
    record(log, ctx, "start")
    return "x" * (mib << 20)


@task(name="wt.isolated_beats", isolate="process", max_heartbeat_interval=1.5)
def isolated_beats(ctx: TaskContext, seconds: float, log: str) -> str:
    """Beats from its child process for longer than its heartbeat allowance."""
    record(log, ctx, "start", pid=os.getpid())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.heartbeat()
        time.sleep(0.05)
    return "beat"


@task(name="wt.kill_worker")
def kill_worker(ctx: TaskContext, log: str) -> None:
    """Kills the worker process running it, as a segfaulting extension would."""
    record(log, ctx, "start")
    os.kill(os.getpid(), signal.SIGKILL)


@task(name="wt.sync_until_stopped")
def sync_until_stopped(ctx: TaskContext, seconds: float, log: str) -> str:
    """A sync body that stops when asked (``ctx.cancel_requested``), as cooperative ones do."""
    record(log, ctx, "start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancel_requested:
            record(log, ctx, "stopped")
            return "stopped"
        time.sleep(0.01)
    record(log, ctx, "end")
    return "ran out"
