"""Task bodies in a child process, for tasks declared ``@task(isolate="process")``.

Such a body can really be stopped: on cancel or timeout its process group gets SIGTERM, then
SIGKILL after :data:`KILL_GRACE` seconds, so it is gone within a second, unlike a thread, which
can only be abandoned. The child is a fresh interpreter (``python -m jobbers.worker.task_child``,
not a fork of a worker that runs threads) that imports the task's module; arguments and the result
cross as JSON lines, never pickle. The child dies with the worker (a worker killed with
``-9`` leaves no body running), and the worker reads at most ``max_result_bytes`` of its answer,
so an oversized result costs the worker no memory.

Protocol, one JSON object per line on the child's stdout (the body's own prints go to stderr):
``{"heartbeat": true}`` while the body calls ``ctx.heartbeat()``, then one ``{"result": ...}`` or
``{"error": {"type", "message", "traceback", "bases"}}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from jobbers.models import ErrorInfo
from jobbers.registry import TaskContext, TaskSpec
from jobbers.worker import childproc

#: Seconds a cancelled or timed-out body gets between SIGTERM and SIGKILL.
KILL_GRACE = 0.5
#: Room for the protocol's own bytes around the result on its line.
LINE_OVERHEAD = 64 * 1024


class ChildTaskError(Exception):
    """The body failed in its child process (or the process died): ``info`` says how."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class ResultTooLargeInChild(Exception):
    """The child's answer is longer than the result cap allows; it was not read."""


async def run_isolated(
    spec: TaskSpec[..., Any],
    kwargs: dict[str, Any],
    ctx: TaskContext,
    max_result_bytes: int,
) -> Any:
    """Run ``spec`` with ``kwargs`` in a child process and return its result.

    Raises :class:`ChildTaskError` for a failure, :class:`ResultTooLargeInChild` for an oversized
    answer; cancellation stops the child (SIGTERM, SIGKILL) before it propagates.
    """
    request = {
        "module": spec.fn.__module__,
        "name": spec.name,
        "kwargs": kwargs,
        "context": [ctx.task_id, ctx.attempt, ctx.worker_id, ctx.hostname],
        "sys_path": sys.path,
        "parent": os.getpid(),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobbers.worker.task_child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=max_result_bytes + LINE_OVERHEAD,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    output = childproc.OutputTail()
    drain = asyncio.create_task(output.drain(proc.stderr))
    try:
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        await proc.stdin.drain()
        proc.stdin.close()
        answer = await _answer(proc.stdout, ctx)
        if answer is None:
            await proc.wait()
            await drain
            raise ChildTaskError(_died(proc.returncode, output))
        if "result" in answer and len(json.dumps(answer["result"])) > max_result_bytes:
            raise ResultTooLargeInChild()
        await proc.wait()
    except BaseException:
        await childproc.stop(proc, KILL_GRACE, group=True)
        raise
    finally:
        drain.cancel()
    if "error" in answer:
        raise ChildTaskError(ErrorInfo.from_json(answer["error"]) or _died(None, output))
    return answer["result"]


async def _answer(stdout: asyncio.StreamReader, ctx: TaskContext) -> dict[str, Any] | None:
    """Heartbeats until the final line; None when the child ended without one."""
    while True:
        try:
            line = await stdout.readline()
        except ValueError:
            raise ResultTooLargeInChild() from None
        if not line:
            return None
        message = json.loads(line)
        if "heartbeat" in message:
            ctx.heartbeat()
            continue
        return dict(message)


def _died(code: int | None, output: childproc.OutputTail) -> ErrorInfo:
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    tail = output.text()
    return ErrorInfo(
        "TaskProcessDied",
        f"the task's process ended with {how} before answering"
        + (f"; its last output:\n{tail}" if tail else ""),
    )
