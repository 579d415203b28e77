"""Running one attempt of a task and turning whatever happened into an :class:`Outcome`.

The store decides what an outcome means (retry, dead letter); this module only reports facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from jobbers.models import ErrorInfo, Outcome, TaskRecord
from jobbers.params import INVALID_ARGUMENTS, binding_problem
from jobbers.registry import TaskContext, TaskSpec, error_type_name

R = TypeVar("R")

#: Tracebacks beyond this are cut from the front: the innermost frames say what broke.
MAX_TRACEBACK = 16_000


async def execute(spec: TaskSpec[..., Any] | None, record: TaskRecord, ctx: TaskContext) -> Outcome:
    """Run one attempt under the task's timeout. Cancellation propagates as ``CancelledError``."""
    if spec is None:
        message = f"no task named {record.name!r} is registered in worker {ctx.worker_id}"
        return Outcome("failed", error=ErrorInfo("UnknownTask", message))
    kwargs: dict[str, Any] = dict(record.kwargs)
    if spec.context_param is not None:
        kwargs[spec.context_param] = ctx
    problem = binding_problem(spec.fn, kwargs)
    if problem is not None:  # names only, never values: the message is stored and shown
        message = f"kwargs do not fit task {record.name}: {problem}"
        return Outcome("failed", error=ErrorInfo(INVALID_ARGUMENTS, message))
    limit = record.policy.timeout
    scope = asyncio.timeout(limit)
    try:
        async with scope:
            if spec.is_async:
                result = await spec.fn(**kwargs)
            else:
                result = await run_in_thread(functools.partial(spec.fn, **kwargs))
    except TimeoutError as exc:
        if scope.expired():
            message = f"task {record.name} exceeded its timeout of {limit:g} s"
            return Outcome("timeout", error=ErrorInfo("TimeoutError", message, _traceback(exc)))
        return _failed(exc)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt from a task: still its failure
        return _failed(exc)
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        message = f"result of task {record.name} is not JSON-serialisable: {exc}"
        return Outcome("failed", error=ErrorInfo("TypeError", message))
    return Outcome("completed", result=result)


def _failed(exc: BaseException) -> Outcome:
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not lose the report
        message = f"<unprintable {type(exc).__name__}>"
    return Outcome("failed", error=ErrorInfo(error_type_name(exc), message, _traceback(exc)))


def _traceback(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text if len(text) <= MAX_TRACEBACK else "..." + text[-MAX_TRACEBACK:]


def run_in_thread(fn: Callable[[], R]) -> asyncio.Future[R]:
    """Run ``fn`` in a fresh daemon thread and return a future for its result.

    Not a ThreadPoolExecutor: a cancelled or timed-out sync task cannot be stopped, only
    abandoned, and an abandoned thread must neither hold a pool slot that the next task needs
    nor keep the interpreter from exiting (executor threads are joined at exit). A thread start
    costs tens of microseconds, nothing next to a store round trip.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(outcome: Callable[[], None]) -> None:
        # RuntimeError: the loop closed while an abandoned thread was still running.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(outcome)

    def set_result(value: R) -> None:
        if not future.done():
            future.set_result(value)

    def set_exception(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def target() -> None:
        try:
            value = context.run(fn)
        except BaseException as exc:
            deliver(functools.partial(set_exception, exc))
        else:
            deliver(functools.partial(set_result, value))

    threading.Thread(target=target, name="jobbers-sync-task", daemon=True).start()
    return future
