"""The task record, its statuses and the one table of allowed transitions.

Every store enforces :data:`TRANSITIONS`; nothing else in Jobbers decides what may follow what.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from jobbers.errors import InvalidTransition as InvalidTransition  # enforced here

JSON = Any


class Status(enum.StrEnum):
    SUBMITTED = "submitted"
    SCHEDULED = "scheduled"
    #: Stored behind parents (a workflow's later node, a fan-out's collector): released to
    #: ``submitted`` by the store step that ends its last parent, or cancelled by one.
    WAITING = "waiting"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    STALLED = "stalled"
    CANCELLED = "cancelled"
    DEAD = "dead"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.STARTED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.SUBMITTED, Status.CANCELLED}),
    Status.WAITING: frozenset({Status.SUBMITTED, Status.CANCELLED}),
    # started -> submitted is a worker handing a task back on graceful shutdown.
    Status.STARTED: frozenset(
        {
            Status.COMPLETED,
            Status.FAILED,
            Status.SCHEDULED,
            Status.STALLED,
            Status.CANCELLED,
            Status.SUBMITTED,
        }
    ),
    Status.STALLED: frozenset({Status.SCHEDULED, Status.FAILED, Status.DEAD, Status.CANCELLED}),
    Status.FAILED: frozenset({Status.DEAD}),
    Status.DEAD: frozenset({Status.SUBMITTED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}

#: No worker will touch a task in these statuses again.
TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.DEAD}
)


def check_transition(task_id: str, current: Status, target: Status) -> None:
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(task_id, current, target)


DeadLetter = Literal["save", "drop"]
Backoff = Literal["constant", "linear", "exponential", "exponential_jitter"]
BACKOFFS: tuple[Backoff, ...] = ("constant", "linear", "exponential", "exponential_jitter")


@dataclass(frozen=True)
class RetryPolicy:
    """How a task is retried. Stored with each task so that what ran is what is shown.

    The field defaults are the defaults everywhere (``@task``, a stored policy missing a field);
    a submission leaves out what it does not override."""

    max_retries: int = 0
    backoff: Backoff = "exponential"
    base_delay: float = 1.0
    max_delay: float = 300.0
    #: Exception type names (``ValueError``, ``mod.MyError``) that may be retried; empty means any.
    retry_on: tuple[str, ...] = ()
    timeout: float | None = None
    max_heartbeat_interval: float | None = None
    dead_letter: DeadLetter = "save"
    #: Attempts whose worker died (lease lost) that requeue without spending ``max_retries``;
    #: one more lost attempt fails the task. 0 fails at the first lost lease.
    max_lost: int = 3

    def to_json(self) -> dict[str, JSON]:
        return {
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "base_delay": self.base_delay,
            "max_delay": self.max_delay,
            "retry_on": list(self.retry_on),
            "timeout": self.timeout,
            "max_heartbeat_interval": self.max_heartbeat_interval,
            "dead_letter": self.dead_letter,
            "max_lost": self.max_lost,
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> RetryPolicy:
        """A stored policy; a field it lacks (stored before the field existed) takes its default."""
        d = _DEFAULT_POLICY
        return cls(
            max_retries=int(data.get("max_retries", d.max_retries)),
            backoff=data.get("backoff", d.backoff),
            base_delay=float(data.get("base_delay", d.base_delay)),
            max_delay=float(data.get("max_delay", d.max_delay)),
            retry_on=tuple(data.get("retry_on", d.retry_on)),
            timeout=data.get("timeout", d.timeout),
            max_heartbeat_interval=data.get("max_heartbeat_interval", d.max_heartbeat_interval),
            dead_letter=data.get("dead_letter", d.dead_letter),
            max_lost=int(data.get("max_lost", d.max_lost)),
        )


#: Every default of a policy, from the field declarations above: the one place they are set.
_DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str = ""
    #: The names of the exception's base classes, nearest first (``retry_on`` matches these too,
    #: so retrying ``OSError`` retries ``ConnectionResetError``); empty for errors not raised.
    bases: tuple[str, ...] = ()
    #: False for a failure that no retry can fix (a result over the size cap): never retried.
    retryable: bool = True

    def to_json(self) -> dict[str, JSON]:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "bases": list(self.bases),
            "retryable": self.retryable,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return cls(
            str(data["type"]),
            str(data["message"]),
            str(data.get("traceback", "")),
            tuple(str(b) for b in data.get("bases", ())),
            bool(data.get("retryable", True)),
        )


AttemptOutcome = Literal[
    "running",
    "completed",
    "failed",
    "timeout",
    "lease_lost",
    "stalled",
    "cancelled",
    "handed_back",
]


@dataclass(frozen=True)
class Attempt:
    number: int
    worker: str
    started_at: float
    finished_at: float | None = None
    outcome: AttemptOutcome = "running"
    error: ErrorInfo | None = None


#: Which end of a parent an edge waits for: ``completed``, or any other end (``failed``: the
#: parent ended failed, dead or cancelled), which is how a node's error handler waits.
EdgeOn = Literal["completed", "failed"]


@dataclass(frozen=True)
class Edge:
    """A task waits for ``parent`` to end as ``on`` says; a parent that ends otherwise cancels
    the waiting task. ``key`` names the parent's result in the waiting task's ``inputs``."""

    parent: str
    key: str | None = None
    on: EdgeOn = "completed"


@dataclass(frozen=True)
class NewTask:
    """What a submission asks for; the store turns it into a :class:`TaskRecord`."""

    id: str
    name: str
    kwargs: dict[str, JSON]
    queue: str = "default"
    priority: int = 0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: Epoch seconds before which the task must not start (``delay`` / ``run_at``).
    due_at: float | None = None
    #: The submitter's W3C ``traceparent``: each attempt's span is its child. Not part of the
    #: payload an id is compared on (a repeat from another span is the same task).
    trace: str | None = None
    #: Parents the task waits for (stored ``waiting`` until the last one ends).
    after: tuple[Edge, ...] = ()
    #: The workflow run the task belongs to.
    run: str | None = None
    #: The kwarg that receives the parents' results when the task starts.
    inputs: str | None = None


@dataclass(frozen=True)
class TaskRecord:
    id: str
    name: str
    queue: str
    kwargs: dict[str, JSON]
    status: Status
    priority: int
    policy: RetryPolicy
    submitted_at: float
    updated_at: float
    retries: int = 0
    #: Attempts lost with their worker (see ``RetryPolicy.max_lost``).
    lost: int = 0
    due_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    lease_expires_at: float | None = None
    heartbeat_at: float | None = None
    result: JSON = None
    error: ErrorInfo | None = None
    attempts: tuple[Attempt, ...] = ()
    #: The submitter's W3C ``traceparent`` (None when it sent none).
    trace: str | None = None
    run: str | None = None
    inputs: str | None = None

    @property
    def attempt(self) -> int:
        return len(self.attempts)


OutcomeKind = Literal["completed", "failed", "timeout", "cancelled", "handed_back"]


@dataclass(frozen=True)
class Outcome:
    """What a worker reports for one attempt; the store decides the next status from the policy.

    ``failed`` and ``timeout`` become a retry (``scheduled``) while the policy allows it and the
    error type is retryable, else ``failed`` (then ``dead`` when the policy saves dead letters).
    """

    kind: OutcomeKind
    result: JSON = None
    error: ErrorInfo | None = None
    #: A completed attempt's dynamic fan-out: tasks stored in the same store step as the
    #: completion, and the task that stands in for this one (its dependants wait for it).
    spawn: tuple[NewTask, ...] = ()
    collector: NewTask | None = None


@dataclass(frozen=True)
class Event:
    #: Opaque: pass it back as ``after`` to read what followed. Backends choose its form.
    cursor: str
    task_id: str
    status: Status
    at: float
    worker: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class QueueConfig:
    name: str
    #: At most this many tasks of the queue run at once across all workers (None: no limit).
    concurrency: int | None = None
    #: At most ``rate_limit`` starts per ``rate_period`` seconds across all workers.
    rate_limit: int | None = None
    rate_period: float = 1.0
    paused: bool = False


@dataclass(frozen=True)
class QueueStats:
    config: QueueConfig
    depth: int
    scheduled: int
    running: int
    #: Waiting tasks (ready or scheduled) that no registered worker serving this queue has the
    #: code for, by task name: they wait for one that has it (a rolling deploy adding a task).
    unrunnable: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskDefinition:
    """A task's defaults as a worker registered them, for a Manager without the code."""

    name: str
    queue: str
    policy: RetryPolicy
    #: JSON Schema of the kwargs; None (a definition from an older worker) accepts any kwargs.
    parameters: dict[str, JSON] | None = None
    #: Kwarg names the task declared secret: masked like the built-in secret keys.
    secrets: tuple[str, ...] = ()

    def to_json(self) -> str:
        """One JSON text, so a store keeps a definition whole whatever fields it gains."""
        data = {
            "name": self.name,
            "queue": self.queue,
            "policy": self.policy.to_json(),
            "parameters": self.parameters,
            "secrets": list(self.secrets),
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TaskDefinition:
        data = json.loads(text)
        return cls(
            str(data["name"]),
            str(data["queue"]),
            RetryPolicy.from_json(data["policy"]),
            data.get("parameters"),
            tuple(data.get("secrets", ())),
        )


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    hostname: str
    queues: tuple[str, ...]
    started_at: float
    last_seen: float
    running: int
    #: How many attempts the worker runs at once (its concurrency); beside ``running`` it
    #: shows how busy the worker is.
    slots: int = 0
    #: Names of the tasks it has the code for (empty: not said, as by an older worker).
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskFilter:
    status: Status | None = None
    queue: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Page:
    tasks: list[TaskRecord]
    cursor: str | None


@dataclass(frozen=True)
class MaintenanceReport:
    promoted: int = 0
    reaped: int = 0
    stalled: int = 0
    pruned: int = 0
    expired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """A workflow run: the graph as submitted (its nodes name the tasks that run them) and when
    it was cancelled, if it was. Its status follows from its tasks' statuses."""

    id: str
    name: str
    created_at: float
    graph: dict[str, JSON]
    cancelled_at: float | None = None


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    cursor: str | None
