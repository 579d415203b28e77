"""Pydantic models of the API's own requests and answers: they validate what comes in besides a
submission (:mod:`jobbers.intake` holds those) and document what goes out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from jobbers.intake.submission import (
    MAX_BATCH,
    PositiveSeconds,
    QueueName,
    Strict,
    TaskName,
)
from jobbers.models import Status

#: Ids a caller asks about: unknown or odd ones are simply not found, so only the length is bound.
LookupId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
#: An id in a URL path: ``.`` and ``..`` are refused (422), as no submission can create them.
PATH_ID_PATTERN = r"^(?s:.*[^.].*|\.{3,})$"


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
    progress: ProgressOut | None = Field(
        None, description="The latest attempt's progress (GET /tasks/{id} and the lists)."
    )
    traceparent: str | None = Field(
        None, description="The submitter's W3C trace context: each attempt's span is its child."
    )


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
    #: Waiting tasks no registered worker serving the queue has the code for, by task name
    #: (Redis looks at the first 1,000 ready and 1,000 scheduled tasks of each queue).
    unrunnable: dict[str, int]


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
