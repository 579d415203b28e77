"""Pydantic models at the HTTP edge only: they validate what comes in and document what goes out.

Inside Jobbers the dataclasses of :mod:`jobbers.models` rule; nothing here leaks past the routes.
Limits are explicit so that no input can reach the store in a shape it cannot hold (huge
integers, non-finite floats, nesting deeper than the JSON encoder can walk).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from jobbers.ids import ID_PATTERN, MAX_ID_LENGTH
from jobbers.jsonsize import encoded_size
from jobbers.models import Status

MAX_BATCH = 10_000
MAX_SECONDS = 10 * 365 * 86400.0
MAX_KWARGS_DEPTH = 64
#: 9000-01-01T00:00:00Z: the latest ``run_at`` accepted.
MAX_EPOCH_SECONDS = 221845392000.0
#: One task's kwargs, encoded; a bulk body may be larger than this, each task in it may not.
MAX_KWARGS_BYTES = 1024 * 1024
NAME_PATTERN = r"^[^\x00-\x1f]{1,200}$"

TaskId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]
#: Ids a caller asks about: unknown or odd ones are simply not found, so only the length is bound.
LookupId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
#: An id in a URL path: ``.`` and ``..`` are refused (422), as no submission can create them.
PATH_ID_PATTERN = r"^(?s:.*[^.].*|\.{3,})$"
QueueName = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]
TaskName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]


def _check_json(value: Any, depth: int = 0) -> None:
    """Reject what would make a stored task unreadable later: NaN/inf and runaway nesting."""
    if depth > MAX_KWARGS_DEPTH:
        raise ValueError(f"kwargs are nested deeper than {MAX_KWARGS_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("kwargs must not hold NaN or infinite numbers (they are not JSON)")
    if isinstance(value, dict):
        for item in value.values():
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def _surely_small(value: dict[str, Any]) -> bool:
    """True when kwargs are far under the size limit, found with orjson (several times faster
    than the stdlib encoder). The limit counts compact ASCII JSON, which is at most three times
    orjson's UTF-8 (a non-ASCII character's bytes become ``\\uXXXX``) plus a few characters per
    number (``1e-05`` for ``1e-5``); four times covers both. Values orjson refuses (integers over
    64 bits, non-string keys) take the exact count."""
    try:
        return len(orjson.dumps(value)) * 4 <= MAX_KWARGS_BYTES
    except orjson.JSONEncodeError:
        return False


class Strict(BaseModel):
    #: Unknown fields are refused so that a typo (``max_retry``) is an error, not a silent default;
    #: strict types so that ``"5"`` is not a number and ``0`` is not ``false``.
    model_config = ConfigDict(extra="forbid", strict=True)


class TaskSubmission(Strict):
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["delay", "run_at"]}})

    name: TaskName = Field(description="A task name registered with this Manager or a worker.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments (JSON).")
    queue: QueueName | None = Field(None, description="Overrides the task's default queue.")
    id: TaskId | None = Field(None, description="Client-chosen id: makes the call idempotent.")
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    delay: Seconds | None = Field(None, description="Seconds to wait before the task may start.")
    run_at: datetime | None = Field(
        None,
        strict=False,
        description="Earliest start: ISO 8601 (UTC if naive) or a number of epoch seconds.",
    )
    max_retries: int | None = Field(None, ge=0, le=1000)
    timeout: PositiveSeconds | None = None
    backoff: Literal["constant", "linear", "exponential", "exponential_jitter"] | None = None
    base_delay: Seconds | None = None
    max_delay: Seconds | None = None
    retry_on: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(
        None, max_length=100
    )
    max_heartbeat_interval: PositiveSeconds | None = None
    dead_letter: Literal["save", "drop"] | None = None
    max_lost: int | None = Field(
        None, ge=0, le=1000, description="Lost leases (worker died) requeued before failing."
    )

    @field_validator("kwargs")
    @classmethod
    def _kwargs_are_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value)
        if not _surely_small(value) and encoded_size(value, MAX_KWARGS_BYTES) is None:
            raise ValueError(f"kwargs are larger than {MAX_KWARGS_BYTES} bytes")
        return value

    @field_validator("run_at", mode="before")
    @classmethod
    def _run_at_seconds(cls, value: Any) -> Any:
        """A number is epoch seconds, always: never guessed to be milliseconds by its size."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if not 0 <= value <= MAX_EPOCH_SECONDS:
            raise ValueError(
                f"run_at as a number is epoch seconds, from 0 to {MAX_EPOCH_SECONDS:.0f}"
                " (the year 9000); send milliseconds divided by 1000, or an ISO 8601 string"
            )
        return datetime.fromtimestamp(value, UTC)

    @field_validator("run_at")
    @classmethod
    def _run_at_in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 1970 <= value.year <= 9000:
            raise ValueError("run_at must fall between the years 1970 and 9000")
        return value

    @model_validator(mode="after")
    def _one_start_time(self) -> TaskSubmission:
        if {"delay", "run_at"} <= self.model_fields_set:
            raise ValueError("give either delay or run_at, not both")
        return self


class BulkSubmission(Strict):
    tasks: list[TaskSubmission] = Field(max_length=MAX_BATCH)


class TaskIds(Strict):
    task_ids: list[LookupId] = Field(max_length=MAX_BATCH)


class DeadLetterFilter(Strict):
    queue: QueueName | None = None
    name: TaskName | None = None


class Resubmission(Strict):
    """Either explicit ids or a filter; ``{"filter": {}}`` means every dead task (up to 10,000)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["task_ids"], "properties": {"task_ids": {"type": "array"}}},
                {"required": ["filter"], "properties": {"filter": {"type": "object"}}},
            ]
        }
    )

    task_ids: list[LookupId] | None = Field(None, max_length=MAX_BATCH)
    filter: DeadLetterFilter | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Resubmission:
        if (self.task_ids is None) == (self.filter is None):
            raise ValueError('give either "task_ids" or "filter" (use {"filter": {}} for all)')
        return self


class QueueUpdate(Strict):
    """Fields left out keep their current value; ``null`` removes a limit."""

    concurrency: int | None = Field(None, ge=1, le=1_000_000)
    rate_limit: int | None = Field(None, ge=1, le=1_000_000_000)
    rate_period: PositiveSeconds = 1.0
    paused: bool = False


# ---- responses (documentation; the routes build plain dicts in serialize.py) ----


class ErrorOut(BaseModel):
    detail: Any


class ErrorInfoOut(BaseModel):
    type: str
    message: str
    traceback: str
    bases: list[str] = Field(description="The exception's base classes, nearest first.")
    retryable: bool = Field(description="False when no retry can fix the failure.")


class ProgressOut(BaseModel):
    fraction: float
    message: str


class LogLineOut(BaseModel):
    at: datetime
    level: str
    message: str


class AttemptOut(BaseModel):
    number: int
    worker: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    error: ErrorInfoOut | None
    progress: ProgressOut | None = Field(None, description="Only in GET /tasks/{id}.")
    logs: list[LogLineOut] = Field([], description="Only in GET /tasks/{id}.")


class PolicyOut(BaseModel):
    max_retries: int
    backoff: str
    base_delay: float
    max_delay: float
    retry_on: list[str]
    timeout: float | None
    max_heartbeat_interval: float | None
    dead_letter: str
    max_lost: int


class TaskOut(BaseModel):
    id: str
    name: str
    queue: str
    kwargs: dict[str, Any]
    status: Status
    priority: int
    result: Any
    error: ErrorInfoOut | None
    attempts: list[AttemptOut]
    retries: int
    max_retries: int
    policy: PolicyOut
    due_at: datetime | None
    worker: str | None
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    omitted: list[Literal["kwargs", "result"]] = Field(
        default_factory=list,
        description="List answers only: fields over 16 KiB left out (kwargs {}, result null);"
        " GET /tasks/{id} shows them.",
    )
    progress: ProgressOut | None = Field(None, description="The latest attempt's progress.")


class TaskListOut(BaseModel):
    tasks: list[TaskOut]
    cursor: str | None = None


class StatusesOut(BaseModel):
    statuses: dict[str, Status]


class CancelOut(BaseModel):
    cancelled: list[str]
    not_cancellable: list[str]
    unknown: list[str]


class EventOut(BaseModel):
    cursor: str
    task_id: str
    status: Status
    at: datetime | None
    worker: str | None
    reason: str | None


class EventsOut(BaseModel):
    events: list[EventOut]
    cursor: str


class CursorOut(BaseModel):
    cursor: str


class ResubmittedOut(BaseModel):
    resubmitted: list[str]
    not_resubmitted: list[str]


class DeletedOut(BaseModel):
    deleted: list[str]


class QueueOut(BaseModel):
    name: str
    concurrency: int | None
    rate_limit: int | None
    rate_period: float
    paused: bool
    depth: int
    scheduled: int
    running: int


class QueuesOut(BaseModel):
    queues: list[QueueOut]


class WorkerOut(BaseModel):
    id: str
    hostname: str
    queues: list[str]
    started_at: datetime | None
    last_seen: datetime | None
    running: int


class WorkersOut(BaseModel):
    workers: list[WorkerOut]


class HealthOut(BaseModel):
    status: str
