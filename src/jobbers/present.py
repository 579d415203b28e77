"""Store records as the JSON the API promises: ISO 8601 UTC times, secrets masked.

Every answer that shows a task, the Manager's routes, its dashboard and the producers alike, is
built here, so the redaction rule cannot be forgotten by a new caller; so is the answer to a
refused call (its status and ``detail``), which the producers raise as the Manager would answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jobbers.errors import InvalidKwargs, InvalidTransition, NotCancellable, UnknownTask
from jobbers.jsonsize import encoded_size
from jobbers.models import (
    Attempt,
    ErrorInfo,
    Event,
    QueueConfig,
    QueueStats,
    RetryPolicy,
    TaskRecord,
    WorkerInfo,
)
from jobbers.redact import redact, secret_keys
from jobbers.store.base import (
    AttemptNotes,
    CancelResult,
    DuplicateTaskConflict,
    Submitted,
    TaskNotFound,
)


@lru_cache(maxsize=256)
def _policy_json(policy: RetryPolicy) -> dict[str, Any]:
    """Shared between answers (encoded, never changed): policies repeat across tasks."""
    return policy.to_json()


@lru_cache(maxsize=1024)
def iso(ts: float | None) -> str | None:
    """Cached: a bulk answer repeats one time for every task in it."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _error(error: ErrorInfo | None) -> dict[str, str] | None:
    return None if error is None else error.to_json()


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "started_at": iso(attempt.started_at),
        "finished_at": iso(attempt.finished_at),
        "outcome": attempt.outcome,
        "error": _error(attempt.error),
    }


def task_json(task: TaskRecord) -> dict[str, Any]:
    secrets = secret_keys(task.name)
    submitted = iso(task.submitted_at)
    updated = submitted if task.updated_at == task.submitted_at else iso(task.updated_at)
    return {
        "id": task.id,
        "name": task.name,
        "queue": task.queue,
        "kwargs": redact(task.kwargs, secrets),
        "status": task.status.value,
        "priority": task.priority,
        "result": redact(task.result, secrets),
        "error": _error(task.error),
        "attempts": [_attempt(a) for a in task.attempts],
        "retries": task.retries,
        "max_retries": task.policy.max_retries,
        "policy": _policy_json(task.policy),
        "due_at": iso(task.due_at),
        "worker": task.worker,
        "submitted_at": submitted,
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "updated_at": updated,
        "traceparent": task.trace,
    }


def listed_task_json(
    task: TaskRecord, max_value_bytes: int, progress: tuple[float, str] | None = None
) -> dict[str, Any]:
    """A task in a list answer: kwargs or a result over ``max_value_bytes`` (as JSON) is left
    out and named in ``omitted``, so that a page of 1,000 tasks stays a bounded answer;
    ``GET /tasks/{id}`` shows the whole task. ``progress``: the latest attempt's, which a list
    shows as a single task does (its log lines only ``GET /tasks/{id}`` shows)."""
    data = task_json(task)
    data["progress"] = None if progress is None else _progress_json(*progress)
    omitted = [
        field
        for field in ("kwargs", "result")
        if encoded_size(data[field], max_value_bytes) is None
    ]
    if omitted:
        data["omitted"] = omitted
        if "kwargs" in omitted:
            data["kwargs"] = {}
        if "result" in omitted:
            data["result"] = None
    return data


def with_notes(body: dict[str, Any], notes: list[AttemptNotes]) -> dict[str, Any]:
    """A task's JSON with what its attempts said: progress and log lines (only for one task: the
    lines of a page of tasks would be too much to read on every listing)."""
    by_number = {n.attempt: n for n in notes}
    for attempt in body["attempts"]:
        note = by_number.get(attempt["number"])
        progress = None
        if note is not None and note.progress is not None:
            progress = _progress_json(note.progress, note.message)
        attempt["progress"] = progress
        attempt["logs"] = [
            {"at": iso(line.at), "level": line.level, "message": line.message}
            for line in (note.lines if note else ())
        ]
    body["progress"] = body["attempts"][-1]["progress"] if body["attempts"] else None
    return body


def _progress_json(fraction: float, message: str) -> dict[str, Any]:
    return {"fraction": fraction, "message": message}


def bulk_json(done: Sequence[Submitted]) -> dict[str, Any]:
    """The answer to a bulk submission: every task, in the order submitted."""
    return {"tasks": [task_json(d.task) for d in done]}


def cancel_json(result: CancelResult) -> dict[str, Any]:
    return {
        "cancelled": result.cancelled,
        "not_cancellable": result.not_cancellable,
        "unknown": result.unknown,
    }


#: The API's status for each error a caller's request can cause; its ``detail`` is the message.
REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownTask, 404),
    (TaskNotFound, 404),
    (DuplicateTaskConflict, 409),
    (InvalidTransition, 409),
    (NotCancellable, 409),
)


def refusal(exc: Exception) -> tuple[int, Any] | None:
    """The status and ``detail`` the API answers ``exc`` with; None for an error that is not the
    caller's (a store outage, a bug)."""
    if isinstance(exc, InvalidKwargs):
        return 422, exc.details()
    for kind, status in REFUSALS:
        if isinstance(exc, kind):
            return status, str(exc)
    return None


def validation_details(
    errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic's errors in the API's 422 shape, without the offending input: it may hold a
    secret, and echoing it back could fail to encode. ``prefix``: where the value sat (``body``)."""
    return [
        {
            "loc": [*prefix, *e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type", ""),
        }
        for e in errors
    ]


def event_json(event: Event) -> dict[str, Any]:
    return {
        "cursor": str(event.cursor),
        "task_id": event.task_id,
        "status": event.status.value,
        "at": iso(event.at),
        "worker": event.worker,
        "reason": event.reason,
    }


def queue_json(config: QueueConfig, stats: QueueStats | None) -> dict[str, Any]:
    return {
        "name": config.name,
        "concurrency": config.concurrency,
        "rate_limit": config.rate_limit,
        "rate_period": config.rate_period,
        "paused": config.paused,
        "depth": stats.depth if stats else 0,
        "scheduled": stats.scheduled if stats else 0,
        "running": stats.running if stats else 0,
        "unrunnable": dict(stats.unrunnable) if stats else {},
    }


def worker_json(info: WorkerInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "hostname": info.hostname,
        "queues": list(info.queues),
        "started_at": iso(info.started_at),
        "last_seen": iso(info.last_seen),
        "running": info.running,
        "slots": info.slots,
    }
