"""What each outcome does to a task: one table that every backend applies.

:mod:`jobbers.policy` decides *whether* a failed attempt runs again; this module says what every
kind of step then *does* to the stored task, so the SQLite steps, the Redis scripts (whose Lua
``EFFECTS``, ``FINAL``, ``RAN`` and ``room_rule()`` are generated from here when the scripts
load) and any other backend write the same thing. Everything is plain data a SQL or Lua
builder can read without importing anything else:

:data:`EFFECTS` maps a step's name to its :class:`Effect`, a frozen record of

- ``sources`` and ``to``: the statuses it applies from and the status it moves to;
- ``reason`` (fixed event text, or None) and ``given`` (a :class:`Given`: the reason is passed
  in instead: the caller's, the policy decision's, or the error's message);
- ``names_worker``: whether the event records the worker;
- ``attempt``: what the attempt records when the step ends it (an ``AttemptOutcome``,
  ``"reported"`` for the failure the worker reported, ``"running"`` for the step that begins
  one, None for none) and ``attempt_error``: whether it keeps the error. An attempt runs only
  while its task is ``started``, so only a step leaving ``started`` ends one;
- ``finishes``: ``finished_at`` becomes now; ``ready``: the task goes back on its queue's ready
  list (and a step whose ``sets`` holds ``due_at`` onto its scheduled list);
- ``clears`` and ``sets``: task fields (:class:`Field`, named as in ``TaskRecord``) emptied, and
  written with a value passed in (the result, the error, the due time);
- ``spends``: the counter (:class:`Counter`) that grows by one; ``resets``: counters set to 0;
- ``tallies``: the monotonic total (:class:`Total`) the step adds one to, per queue and task
  name, in the same store step (a finish is tallied by the status it ends in). Totals are never
  taken back: pruning or deleting a task leaves them, so Prometheus reads true counters. A
  submission adds to :data:`SUBMITTED`, outside this table (it is no step of a stored task).

A worker's report takes the step :data:`REPORTED` names for its outcome; a claim takes
:data:`START` (the backend also writes what a start alone has: the next attempt number, the
worker, ``started_at`` and the lease). Failures go through :func:`jobbers.policy.decide`, whose
answer names one of the decision steps (``retry``, ``requeue``, ``fail``, ``give_up``),
followed by ``dead_letter`` when the policy saves dead letters (``Decision.steps``); the
counters it reports are what applying their ``spends`` gives. A lost lease or a lapsed
heartbeat first takes the step :data:`REAPED` names (``lose_lease``, ``stall``: ``started ->
stalled``) with the error built by :func:`lease_lost_error` or :func:`heartbeat_error`, then
the decision's steps apply from ``stalled``.

:data:`FINAL` (no worker touches the task again) and :data:`RAN` (it ran to an end, so its run
time counts) are the finished-status sets. :data:`CAPS` and :func:`room` are the queue-room
rule: a paused queue starts nothing; each cap whose setting is not None bounds the starts by
the setting minus what counts against it (tasks running; starts within the window).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from jobbers.models import TERMINAL, AttemptOutcome, ErrorInfo, OutcomeKind, QueueConfig, Status

#: How an attempt ended without success. ``lease_lost``: the worker stopped renewing (it died or
#: was cut off); ``stalled``: the task stopped sending heartbeats.
FailureKind = Literal["failed", "timeout", "lease_lost", "stalled"]
#: What a step records on the attempt: see the module docstring.
AttemptRecord = AttemptOutcome | Literal["reported"]


class Field(enum.StrEnum):
    """Task fields a step clears or writes, named as ``TaskRecord`` (and SQL columns) name them."""

    WORKER = "worker"
    LEASE = "lease_expires_at"
    HEARTBEAT = "heartbeat_at"
    FINISHED = "finished_at"
    DUE = "due_at"
    RESULT = "result"
    ERROR = "error"


class Counter(enum.StrEnum):
    RETRIES = "retries"
    LOST = "lost"


class Total(enum.StrEnum):
    """Monotonic totals per (queue, task name): what happened, not what is kept."""

    SUBMITTED = "submitted"
    STARTED = "started"
    FINISHED = "finished"
    RETRIED = "retried"
    LEASE_LOST = "lease_lost"
    STALLED = "stalled"
    DEAD_LETTERED = "dead_lettered"
    RESUBMITTED = "resubmitted"


#: The total a submission adds to (one per task created; an idempotent repeat adds nothing).
SUBMITTED = Total.SUBMITTED.value


class Given(enum.StrEnum):
    """Where a step's event reason comes from when it is not fixed text."""

    CALLER = "caller"
    DECISION = "decision"
    ERROR = "error"


@dataclass(frozen=True)
class Effect:
    name: str
    sources: frozenset[Status]
    to: Status
    reason: str | None = None
    given: Given | None = None
    names_worker: bool = True
    attempt: AttemptRecord | None = None
    attempt_error: bool = False
    finishes: bool = False
    ready: bool = False
    clears: frozenset[Field] = frozenset()
    sets: frozenset[Field] = frozenset()
    spends: Counter | None = None
    resets: frozenset[Counter] = frozenset()
    tallies: Total | None = None

    @property
    def total(self) -> str | None:
        """The key of the total this step adds one to: ``finished:<status>`` for a finish."""
        if self.tallies is None:
            return None
        if self.tallies is Total.FINISHED:
            return f"{Total.FINISHED.value}:{self.to.value}"
        return self.tallies.value

    def reason_for(self, given: str | None = None) -> str | None:
        """The event's reason: the fixed text, else what was given."""
        return given if self.given is not None else self.reason


def _of(*statuses: Status) -> frozenset[Status]:
    return frozenset(statuses)


_RUNNING = _of(Status.STARTED, Status.STALLED)

START = Effect(
    "start",
    _of(Status.SUBMITTED),
    Status.STARTED,
    attempt="running",
    clears=frozenset({Field.FINISHED, Field.HEARTBEAT}),
    tallies=Total.STARTED,
)
COMPLETE = Effect(
    "complete",
    _of(Status.STARTED),
    Status.COMPLETED,
    attempt="completed",
    finishes=True,
    clears=frozenset({Field.LEASE, Field.ERROR}),
    sets=frozenset({Field.RESULT}),
    tallies=Total.FINISHED,
)
HAND_BACK = Effect(
    "hand_back",
    _of(Status.STARTED),
    Status.SUBMITTED,
    reason="handed back",
    attempt="handed_back",
    ready=True,
    clears=frozenset({Field.LEASE, Field.WORKER}),
)
CANCEL_BY_TASK = Effect(
    "cancel_by_task",
    _of(Status.STARTED),
    Status.CANCELLED,
    reason="cancelled by the task",
    attempt="cancelled",
    attempt_error=True,
    finishes=True,
    clears=frozenset({Field.LEASE}),
    tallies=Total.FINISHED,
)
CANCEL = Effect(
    "cancel",
    _of(Status.SUBMITTED, Status.SCHEDULED, Status.WAITING, Status.STARTED, Status.STALLED),
    Status.CANCELLED,
    given=Given.CALLER,
    attempt="cancelled",
    finishes=True,
    clears=frozenset({Field.LEASE}),
    tallies=Total.FINISHED,
)
DUE = Effect(
    "due",
    _of(Status.SCHEDULED),
    Status.SUBMITTED,
    reason="due",
    names_worker=False,
    ready=True,
    clears=frozenset({Field.DUE}),
)
RESUBMIT = Effect(
    "resubmit",
    _of(Status.DEAD),
    Status.SUBMITTED,
    reason="resubmitted",
    names_worker=False,
    ready=True,
    clears=frozenset({Field.DUE, Field.FINISHED, Field.WORKER, Field.RESULT, Field.ERROR}),
    resets=frozenset({Counter.RETRIES, Counter.LOST}),
    tallies=Total.RESUBMITTED,
)
LOSE_LEASE = Effect(
    "lose_lease",
    _of(Status.STARTED),
    Status.STALLED,
    given=Given.ERROR,
    attempt="lease_lost",
    attempt_error=True,
    tallies=Total.LEASE_LOST,
)
STALL = Effect(
    "stall",
    _of(Status.STARTED),
    Status.STALLED,
    given=Given.ERROR,
    attempt="stalled",
    attempt_error=True,
    tallies=Total.STALLED,
)
RETRY = Effect(
    "retry",
    _RUNNING,
    Status.SCHEDULED,
    given=Given.DECISION,
    attempt="reported",
    attempt_error=True,
    clears=frozenset({Field.LEASE}),
    sets=frozenset({Field.ERROR, Field.DUE}),
    spends=Counter.RETRIES,
    tallies=Total.RETRIED,
)
REQUEUE = Effect(
    "requeue",
    _of(Status.STALLED),
    Status.SCHEDULED,
    given=Given.DECISION,
    clears=frozenset({Field.LEASE}),
    sets=frozenset({Field.ERROR, Field.DUE}),
    spends=Counter.LOST,
)
FAIL = Effect(
    "fail",
    _RUNNING,
    Status.FAILED,
    given=Given.DECISION,
    attempt="reported",
    attempt_error=True,
    finishes=True,
    clears=frozenset({Field.LEASE}),
    sets=frozenset({Field.ERROR}),
    tallies=Total.FINISHED,
)
GIVE_UP = Effect(
    "give_up",
    _of(Status.STALLED),
    Status.FAILED,
    given=Given.DECISION,
    finishes=True,
    clears=frozenset({Field.LEASE}),
    sets=frozenset({Field.ERROR}),
    spends=Counter.LOST,
    tallies=Total.FINISHED,
)
DEAD_LETTER = Effect(
    "dead_letter",
    _of(Status.FAILED),
    Status.DEAD,
    reason="dead-lettered",
    tallies=Total.DEAD_LETTERED,
)
#: The last parent a waiting task needed ended as its edge asked.
RELEASE = Effect(
    "release",
    _of(Status.WAITING),
    Status.SUBMITTED,
    reason="released",
    names_worker=False,
    ready=True,
)
#: A parent ended otherwise than an edge of the waiting task asked: it will never run.
SKIP = Effect(
    "skip",
    _of(Status.WAITING),
    Status.CANCELLED,
    given=Given.CALLER,
    names_worker=False,
    finishes=True,
    tallies=Total.FINISHED,
)

EFFECTS: Mapping[str, Effect] = {
    e.name: e
    for e in (
        START,
        COMPLETE,
        HAND_BACK,
        CANCEL_BY_TASK,
        CANCEL,
        DUE,
        RESUBMIT,
        LOSE_LEASE,
        STALL,
        RETRY,
        REQUEUE,
        FAIL,
        GIVE_UP,
        DEAD_LETTER,
        RELEASE,
        SKIP,
    )
}

#: The step a worker's report takes when it is not a failure (failures go through the policy).
REPORTED: Mapping[OutcomeKind, Effect] = {
    "completed": COMPLETE,
    "handed_back": HAND_BACK,
    "cancelled": CANCEL_BY_TASK,
}
#: The step maintenance takes first for an attempt it finds dead or stuck.
REAPED: Mapping[FailureKind, Effect] = {"lease_lost": LOSE_LEASE, "stalled": STALL}

#: Finished: no worker touches the task again (the same set as ``models.TERMINAL``).
FINAL: frozenset[Status] = TERMINAL
#: Ran to an end: a run time is counted for the task.
RAN: frozenset[Status] = _of(Status.COMPLETED, Status.FAILED, Status.DEAD)


def total_keys() -> list[str]:
    """Every total key a store may hold, in a fixed order (for docs, metrics and tests)."""
    keys = [SUBMITTED]
    for e in EFFECTS.values():
        if e.total is not None and e.total not in keys:
            keys.append(e.total)
    return keys


def satisfies(on: str, ended: Status) -> bool:
    """Whether a parent that ended ``ended`` (a final status) is what an edge ``on`` waits for."""
    return (ended == Status.COMPLETED) == (on == "completed")


def skip_reason(parent: str, ended: Status) -> str:
    return f"parent {parent} ended {ended.value}"


def in_order(statuses: frozenset[Status]) -> list[Status]:
    """A status set in the table's order, so generated SQL and Lua text never changes."""
    return [s for s in Status if s in statuses]


# -- errors and reasons ---------------------------------------------------------------------


def lease_lost_error(worker: str | None) -> ErrorInfo:
    return ErrorInfo("LeaseLost", f"worker {worker} stopped renewing its lease (lost)")


def heartbeat_error(interval: float) -> ErrorInfo:
    return ErrorInfo("HeartbeatTimeout", f"no heartbeat for more than {interval:g} s")


def failure_error(error: ErrorInfo | None) -> ErrorInfo:
    """A failure reported without an error still records one, so the task shows why it ended."""
    return error or ErrorInfo("Error", "the task failed without an error")


def error_reason(error: ErrorInfo) -> str:
    return f"{error.type}: {error.message}"


def lost_reason(error: ErrorInfo, lost: int, max_lost: int) -> str:
    """Why ``give_up`` failed the task: the lost attempts counted, this one included."""
    return f"{error_reason(error)} (lost {lost} attempt(s); max_lost is {max_lost})"


# -- room to start --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """A queue setting that bounds its starts: ``limit`` (a ``QueueConfig`` field, None for
    no bound) minus what counts against it (``used``), counted over the ``window`` field's
    seconds when it has one."""

    limit: str
    used: Literal["running", "recent_starts"]
    window: str | None = None


#: The ``QueueConfig`` field that stops a queue from starting anything.
PAUSED = "paused"
CAPS: tuple[Cap, ...] = (
    Cap("concurrency", "running"),
    Cap("rate_limit", "recent_starts", "rate_period"),
)


def room(config: QueueConfig, wanted: int, used: Callable[[Cap], int]) -> int:
    """How many of ``wanted`` tasks of this queue may start now across every worker (never
    below 0). ``used`` counts what is charged against a cap; it is asked only while room is
    left, so a backend counts nothing for a queue already full."""
    if getattr(config, PAUSED):
        return 0
    free = wanted
    for cap in CAPS:
        limit = getattr(config, cap.limit)
        if limit is not None and free > 0:
            free = min(free, int(limit) - used(cap))
    return max(free, 0)


def window_start(config: QueueConfig, cap: Cap, now: float) -> float:
    """Starts after this instant count against ``cap`` (a cap without a window: every one)."""
    if cap.window is None:
        return float("-inf")
    return now - float(getattr(config, cap.window))
