"""What a submission may hold, as pydantic models: the Manager's routes, its fast path and the
producers validate with these same models, so a body one of them takes the others take too.

Inside Jobbers the dataclasses of :mod:`jobbers.models` rule; these stop at the intake. Limits are
explicit so that no input can reach the store in a shape it cannot hold (huge integers, non-finite
floats, nesting deeper than the JSON encoder can walk).
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

MAX_BATCH = 10_000
MAX_SECONDS = 10 * 365 * 86400.0
MAX_KWARGS_DEPTH = 64
#: 9000-01-01T00:00:00Z: the latest ``run_at`` accepted.
MAX_EPOCH_SECONDS = 221845392000.0
#: One task's kwargs, encoded; a bulk body may be larger than this, each task in it may not.
MAX_KWARGS_BYTES = 1024 * 1024
NAME_PATTERN = r"^[^\x00-\x1f]{1,200}$"

#: W3C Trace Context ``traceparent``: version-traceid-parentid-flags in lowercase hex.
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
Traceparent = Annotated[str, StringConstraints(pattern=TRACEPARENT_PATTERN)]
TaskId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]
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
    traceparent: Traceparent | None = Field(
        None,
        description="W3C trace context of the submitter: each attempt's span is its child."
        " Overrides a traceparent header.",
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
