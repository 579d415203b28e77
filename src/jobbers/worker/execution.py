"""Running one attempt of a task and turning whatever happened into an :class:`Outcome`.

The store decides what an outcome means (retry, dead letter); this module only reports facts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from jobbers.current import CurrentTask, reset_current, set_current
from jobbers.errors import UnknownTask
from jobbers.injection import Resolver
from jobbers.jsonsize import encoded_size
from jobbers.models import ErrorInfo, Outcome, TaskRecord
from jobbers.params import INVALID_ARGUMENTS, binding_problem
from jobbers.registry import TaskContext, TaskSpec, error_base_names
from jobbers.worker.error_info import error_info, traceback_of
from jobbers.worker.isolated import ChildTaskError, ResultTooLargeInChild, run_isolated
from jobbers.worker.threads import SyncThreads
from jobbers.workflows.fanout import FanOut, spawned

log = logging.getLogger("jobbers.worker")

#: Default cap on one result, encoded as JSON (the worker's ``max_result_bytes``).
MAX_RESULT_BYTES = 1024 * 1024

#: Threads for callers that do not count abandoned ones (tests running one attempt).
_THREADS = SyncThreads()


async def execute(
    spec: TaskSpec[..., Any] | None,
    record: TaskRecord,
    ctx: TaskContext,
    *,
    max_result_bytes: int = MAX_RESULT_BYTES,
    threads: SyncThreads | None = None,
) -> Outcome:
    """Run one attempt under the task's timeout. Cancellation propagates as ``CancelledError``."""
    if spec is None:
        message = f"no task named {record.name!r} is registered in worker {ctx.worker_id}"
        return Outcome("failed", error=ErrorInfo("UnknownTask", message))
    kwargs: dict[str, Any] = dict(record.kwargs)
    bound = kwargs if spec.context_param is None else {**kwargs, spec.context_param: ctx}
    problem = binding_problem(spec.fn, bound)
    if problem is not None:  # names only, never values: the message is stored and shown
        message = f"kwargs do not fit task {record.name}: {problem}"
        return Outcome("failed", error=ErrorInfo(INVALID_ARGUMENTS, message, retryable=False))
    limit = record.policy.timeout
    scope = asyncio.timeout(limit)
    token = set_current(CurrentTask(record.id, ctx.attempt, record.name, record.run))
    try:
        async with scope:
            if spec.isolate == "process":
                result = await run_isolated(spec, kwargs, ctx, max_result_bytes)
            else:
                if spec.context_param is not None:
                    kwargs[spec.context_param] = ctx
                result = await _run_body(spec, record, kwargs, threads)
    except TimeoutError as exc:
        if scope.expired():
            message = f"task {record.name} exceeded its timeout of {limit:g} s"
            bases = error_base_names(exc)  # TimeoutError is an OSError: retry_on=(OSError,) holds
            error = ErrorInfo("TimeoutError", message, traceback_of(exc), bases)
            return Outcome("timeout", error=error)
        return Outcome("failed", error=error_info(exc))
    except asyncio.CancelledError:
        raise
    except ChildTaskError as exc:
        return Outcome("failed", error=exc.info)
    except ResultTooLargeInChild:
        return _too_large(record, max_result_bytes)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt from a task: still its failure
        return Outcome("failed", error=error_info(exc))
    finally:
        reset_current(token)
    if isinstance(result, FanOut):
        return _fanned_out(result, record)
    try:
        size = encoded_size(result, max_result_bytes)
    except (TypeError, ValueError) as exc:
        message = f"result of task {record.name} is not JSON-serialisable: {exc}"
        bases = error_base_names(exc)
        return Outcome("failed", error=ErrorInfo(type(exc).__name__, message, bases=bases))
    if size is None:
        return _too_large(record, max_result_bytes)
    return Outcome("completed", result=result)


def _fanned_out(result: FanOut, record: TaskRecord) -> Outcome:
    try:
        children, collector = spawned(result, record)
    except UnknownTask as exc:
        message = f"task {record.name} fanned out to a task this worker has not registered: {exc}"
        return Outcome("failed", error=ErrorInfo("UnknownTask", message, retryable=False))
    return Outcome("completed", spawn=children, collector=collector)


async def _run_body(
    spec: TaskSpec[..., Any],
    record: TaskRecord,
    kwargs: dict[str, Any],
    threads: SyncThreads | None,
) -> Any:
    """The body, with its providers set up before and torn down after, whatever the ending."""
    resolver = Resolver() if spec.injected else None
    try:
        if resolver is not None:
            kwargs.update(await resolver.resolve(spec.injected))
        if spec.is_async:
            result = await spec.fn(**kwargs)
        else:
            label = f"task {record.id} {record.name} attempt {record.attempt}"
            body = functools.partial(spec.fn, **kwargs)
            result = await (threads or _THREADS).run(body, label)
    except BaseException as exc:
        if resolver is not None:
            try:
                await resolver.aclose(type(exc), exc, exc.__traceback__)
            except BaseException as teardown:  # the task's own error is the one to report
                if teardown is not exc:
                    log.warning(
                        "task %s %s: a provider's teardown failed after the task did: %s",
                        record.id,
                        record.name,
                        type(teardown).__name__,
                    )
        raise
    if resolver is not None:
        await resolver.aclose()  # a teardown that fails fails the attempt
    return result


def _too_large(record: TaskRecord, limit: int) -> Outcome:
    message = (
        f"result of task {record.name} is larger than the cap of {limit} bytes (JSON-encoded;"
        " the worker's --max-result-bytes): store a large result elsewhere (a file, an object"
        " store) and return a reference to it"
    )
    return Outcome("failed", error=ErrorInfo("ResultTooLarge", message, retryable=False))
