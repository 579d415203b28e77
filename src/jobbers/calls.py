"""What a call looks like whichever way it goes, over HTTP (the clients) or straight to the store
(the producers): the body of a submission and the error of a wait that ran out. Light on purpose:
a client imports it without the intake's validation models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobbers import tracing
from jobbers.models import TERMINAL

_FINAL = frozenset(s.value for s in TERMINAL)


def submission_body(
    name: str, kwargs: dict[str, Any] | None, queue: str | None, id: str | None, options: Any
) -> dict[str, Any]:
    """The body of ``POST /tasks``; the producers validate the same body."""
    body: dict[str, Any] = {"name": name, "kwargs": kwargs or {}, **options}
    if queue is not None:
        body["queue"] = queue
    if id is not None:
        body["id"] = id
    trace = tracing.current_traceparent()
    if trace is not None and "traceparent" not in body:
        body["traceparent"] = trace
    return body


def traced(tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bulk bodies: each task without a traceparent of its own gets the caller's span's."""
    trace = tracing.current_traceparent()
    if trace is None:
        return list(tasks)
    return [t if "traceparent" in t else {**t, "traceparent": trace} for t in tasks]


def is_final(task: dict[str, Any]) -> bool:
    """The task JSON shows a status no worker will change again."""
    return task.get("status") in _FINAL


def still_running(task_id: str, task: dict[str, Any], timeout: float) -> TimeoutError:
    """What every ``wait`` raises when ``timeout`` passes before the task ends."""
    return TimeoutError(f"task {task_id} still {task.get('status')} after {timeout}s")
