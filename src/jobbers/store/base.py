"""The store contract: the only way any Jobbers process reads or changes state.

Each method is one atomic step in the backend (one SQL transaction, one Lua script), batched
where a caller has many items, so that the worker, the API and the executor stay backend-blind.
``tests/store/test_conformance.py`` is the executable definition of this contract.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jobbers.errors import JobbersError
from jobbers.models import (
    JSON,
    Event,
    MaintenanceReport,
    NewTask,
    Outcome,
    Page,
    QueueConfig,
    QueueStats,
    Run,
    RunPage,
    Status,
    TaskDefinition,
    TaskFilter,
    TaskRecord,
    WorkerInfo,
)
from jobbers.schedule import Schedule


class StoreError(JobbersError):
    """Base class for errors a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is not usable; its message is one line for an operator."""


class StoreUnreachable(StoreUnavailable):
    """The store did not answer (connection refused, timed out): it may come back, so a worker
    started before it waits for it, where a bad URL or a refused login fails at once."""


class StoreIncompatible(StoreUnavailable):
    """The store answers but holds a schema this code cannot use: waiting will not fix it, so a
    worker stops instead of retrying."""


class DuplicateTaskConflict(StoreError):
    """Ids already used with another payload (in the store, or twice in one batch with
    ``message`` saying so); nothing was stored."""

    def __init__(self, task_ids: Sequence[str], message: str | None = None) -> None:
        super().__init__(
            message or "task id(s) already used with another payload: " + ", ".join(task_ids[:10])
        )
        self.task_ids = list(task_ids)


class BadCursor(StoreError, ValueError):
    """A cursor that no page or event of this store ever returned."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"bad cursor {cursor[:64]!r}: pass back a cursor the store returned")
        self.cursor = cursor


class TaskNotFound(StoreError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


@dataclass(frozen=True)
class Submitted:
    task: TaskRecord
    #: False when the id already existed with the same payload (an idempotent repeat).
    created: bool


_SCALARS = (str, int, float, bool, type(None))


def _copy_kwargs(kwargs: dict[str, JSON], kwargs_json: str) -> dict[str, JSON]:
    """Flat kwargs of plain scalars (most tasks') copy as they are, exactly as a round trip
    through their JSON would give them back; anything nested is read back from that JSON."""
    if all(type(v) in _SCALARS and type(k) is str for k, v in kwargs.items()):
        return dict(kwargs)
    loaded: dict[str, JSON] = json.loads(kwargs_json)
    return loaded


def new_record(task: NewTask, kwargs_json: str, at: float) -> TaskRecord:
    """A task as a store holds it right after inserting it (from the stored kwargs text, so the
    record shares nothing mutable with the caller): stores answer a fresh submission with this
    instead of reading back what they have just written."""
    due = task.due_at if task.due_at is not None and task.due_at > at else None
    if task.after:
        due = None
    status = Status.WAITING if task.after else Status.SUBMITTED
    return TaskRecord(
        id=task.id,
        name=task.name,
        queue=task.queue,
        kwargs=_copy_kwargs(task.kwargs, kwargs_json),
        status=status if due is None else Status.SCHEDULED,
        priority=task.priority,
        policy=task.policy,
        submitted_at=at,
        updated_at=at,
        due_at=due,
        trace=task.trace,
        run=task.run,
        inputs=task.inputs,
    )


@dataclass(frozen=True)
class Report:
    """One attempt's outcome, fenced by the attempt number the worker claimed."""

    task_id: str
    attempt: int
    outcome: Outcome


@dataclass(frozen=True)
class Renewal:
    #: Tasks this worker no longer owns (cancelled, reaped, stalled): stop them, drop results.
    lost: list[str] = field(default_factory=list)
    #: False when the store no longer lists the worker (it lost its data, or dropped the worker
    #: as unseen for too long): the worker registers again, with its task definitions.
    registered: bool = True


#: In :meth:`Store.wait_for_cancel`'s answer: announcements may have been missed, renew now.
ANY_TASK = "*"


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str] = field(default_factory=list)
    not_cancellable: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


#: Upper bounds, in seconds, of the queue wait and run time histograms :meth:`Store.counts` fills.
DURATION_BUCKETS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
)


@dataclass(frozen=True)
class Durations:
    """A histogram over :data:`DURATION_BUCKETS`: ``buckets[i]`` counts values <= bound ``i``."""

    buckets: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)
    count: int = 0
    total: float = 0.0


@dataclass(frozen=True)
class TaskCounts:
    """What the store holds now, summed: the dashboard's overview and the metrics both read it.

    Counts cover every task the store still keeps (finished ones until pruned).
    """

    #: ``(queue, name, status) -> tasks``.
    tasks: dict[tuple[str, str, Status], int] = field(default_factory=dict)
    #: ``(queue, name) -> retries`` summed over the tasks kept.
    retries: dict[tuple[str, str], int] = field(default_factory=dict)
    #: ``queue -> time`` the longest-waiting ready (``submitted``) task became ready.
    oldest_ready: dict[str, float] = field(default_factory=dict)
    #: ``(bucket start, status) -> tasks`` that finished (completed, failed, cancelled or dead)
    #: at or after ``since``, in buckets of ``bucket`` seconds.
    finished: dict[tuple[float, Status], int] = field(default_factory=dict)
    #: Per queue: seconds from ready to started (latest attempt), and from started to finished.
    wait: dict[str, Durations] = field(default_factory=dict)
    run: dict[str, Durations] = field(default_factory=dict)
    #: ``(queue, name, total) -> n``: monotonic totals (``jobbers.effects.total_keys()``), moved
    #: in the same step as what they count and never taken back by a prune or a delete.
    totals: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: ``(kind, queue, name) -> Durations``, kind ``wait`` (each start: from when the task
    #: became ``submitted`` to started) or ``run`` (each attempt's end, whatever it was:
    #: started to ended); monotonic like ``totals``.
    timings: dict[tuple[str, str, str], Durations] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    at: float
    level: str
    message: str


@dataclass(frozen=True)
class AttemptNotes:
    """What a running attempt said about itself: its latest progress and new log lines."""

    task_id: str
    attempt: int
    #: 0.0 to 1.0, or None when the attempt reported no progress (or this batch has none).
    progress: float | None = None
    message: str = ""
    lines: tuple[LogLine, ...] = ()


class Store(Protocol):
    """The contract. Times are epoch seconds; ``now`` parameters exist so tests can steer time."""

    async def check(self) -> None:
        """Open the store and verify it answers with the schema this code expects; raise
        StoreUnavailable with one line saying what is wrong."""
        ...

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        """Store new tasks, idempotent by id; raises DuplicateTaskConflict and stores nothing
        when any id exists with another payload."""
        ...

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        now: float | None = None,
        *,
        names: Collection[str] | None = None,
    ) -> list[TaskRecord]:
        """Move up to ``limit`` ready tasks to ``started`` for this worker, honouring each queue's
        pause flag, global concurrency limit and rate limit; due scheduled tasks count as ready.

        ``names``: only tasks of these names (those whose code the worker has); the others wait
        for a worker that has theirs, where they were. None takes any name."""
        ...

    async def wait_for_change(self, timeout: float) -> None:
        """Return soon after another writer changed the store, or after ``timeout``."""
        ...

    async def wait_for_cancel(self, timeout: float) -> list[str]:
        """Running tasks cancelled since the last call, returned as soon as there are any (a
        backend that cannot hear cancellations returns [] after ``timeout``; lease renewal then
        tells the worker). A backend that may have missed announcements (while it subscribed,
        or subscribed again after an outage) includes :data:`ANY_TASK`, so that the worker renews
        at once and the renewal tells it what was cancelled meanwhile."""
        ...

    async def renew(
        self,
        worker_id: str,
        leases: Mapping[str, int],
        lease: float,
        heartbeats: Mapping[str, float] | None = None,
        now: float | None = None,
    ) -> Renewal:
        """Extend the leases of ``{task_id: attempt}`` in one step, record task heartbeats and the
        worker's liveness; report what the worker lost."""
        ...

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        """Record outcomes; a report whose attempt this worker no longer owns changes nothing
        and yields None (fencing)."""
        ...

    async def cancel(
        self,
        task_ids: Sequence[str],
        reason: str = "cancelled by request",
        now: float | None = None,
    ) -> CancelResult: ...

    async def get(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]: ...

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, Status]: ...

    async def query(self, filters: TaskFilter, limit: int, cursor: str | None = None) -> Page:
        """Newest first; ``cursor`` is the opaque value a previous page returned (else
        :class:`BadCursor`)."""
        ...

    async def events(self, after: str | None, limit: int) -> list[Event]:
        """Events after the cursor ``after`` (None or ``"0"``: from the oldest kept), oldest
        first. Cursors are opaque strings; a malformed one raises :class:`BadCursor`."""
        ...

    async def latest_event(self) -> str:
        """The newest event's cursor (``"0"`` before the first): where a new reader of the feed
        starts when only what happens from now on matters. Pruning old events never lowers it."""
        ...

    async def resubmit(self, task_ids: Sequence[str], now: float | None = None) -> list[str]:
        """Dead tasks run again with the same id and a fresh retry budget; returns those moved."""
        ...

    async def delete(self, task_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        """Delete tasks that are in one of ``statuses``; returns the ids deleted."""
        ...

    async def set_queue(self, config: QueueConfig) -> QueueConfig: ...

    async def queue_stats(self) -> list[QueueStats]: ...

    async def register_worker(
        self, info: WorkerInfo, tasks: Sequence[TaskDefinition], now: float | None = None
    ) -> None: ...

    async def unregister_worker(self, worker_id: str) -> None: ...

    async def workers(self) -> list[WorkerInfo]: ...

    async def task_definitions(self) -> dict[str, TaskDefinition]:
        """Tasks registered by any worker so far: what the API accepts besides its own registry."""
        ...

    async def promote_due(self, now: float | None = None) -> int: ...

    async def reap(self, now: float | None = None) -> MaintenanceReport:
        """Expired leases and lapsed heartbeats: mark ``stalled``, then retry or fail by policy."""
        ...

    async def prune(self, before: float) -> int:
        """Delete completed, failed, cancelled and dead tasks finished before ``before``, and
        events older than it."""
        ...

    async def counts(self, since: float, bucket: float = 60.0) -> TaskCounts:
        """Tasks kept, summed by queue, name and status, with finishes since ``since`` per
        ``bucket`` seconds and wait/run histograms; read-only and safe for any reader to poll."""
        ...

    async def add_notes(
        self, worker_id: str, notes: Sequence[AttemptNotes], now: float | None = None
    ) -> None:
        """Record progress (the latest replaces the last) and append log lines, in one step.
        Notes for an attempt that is not this worker's latest (fencing) or of a task that is gone
        are dropped. Deleting or pruning a task deletes its notes."""
        ...

    async def notes(self, task_id: str) -> list[AttemptNotes]:
        """Every attempt's latest progress and all its log lines, in attempt order."""
        ...

    async def progress(self, attempts: Sequence[tuple[str, int]]) -> dict[str, tuple[float, str]]:
        """The latest progress (fraction, message) of each ``(task id, attempt number)`` that
        reported one, by task id: one read for a page of tasks, without their log lines."""
        ...

    async def create_run(
        self, run: Run, tasks: Sequence[NewTask], now: float | None = None
    ) -> None:
        """Stores the run and its tasks in one step (fresh ids only: a repeat raises
        ``DuplicateTaskConflict`` and stores nothing)."""
        ...

    async def runs(self, limit: int, cursor: str | None = None, name: str | None = None) -> RunPage:
        """Newest first."""
        ...

    async def run(self, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
        """The run and every task it holds (its nodes', handlers' and dynamic children's),
        in submission order."""
        ...

    async def cancel_run(
        self, run_id: str, reason: str, now: float | None = None
    ) -> CancelResult | None:
        """Marks the run cancelled and cancels every task of it not yet ended, in one step."""
        ...

    async def parent_results(self, task_id: str) -> list[tuple[str | None, JSON]]:
        """The results of the task's completed parents, by edge key, in the edges' order."""
        ...

    async def save_schedule(self, schedule: Schedule, create: bool) -> bool:
        """Store a schedule's spec and ``next_fire``: a new one (``create``; False if the id is
        taken) or an update of one (False if unknown), keeping its firing history."""
        ...

    async def schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        ...

    async def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    async def delete_schedule(self, schedule_id: str) -> bool: ...

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float,
        next_fire: float | None,
        fired_at: float | None = None,
        tasks: Sequence[str] = (),
    ) -> bool:
        """Compare-and-set: move ``next_fire`` from ``expected`` on, recording the occurrence
        ``fired_at`` and what it submitted (``fired_at`` None: skipped, history kept). False
        when ``next_fire`` is no longer ``expected`` (another firer or an update got there)."""
        ...

    async def close(self) -> None: ...
