"""The store contract: the only way any Jobbers process reads or changes state.

Each method is one atomic step in the backend (one SQL transaction, one Lua script), batched
where a caller has many items, so that the worker, the API and the executor stay backend-blind.
``tests/store/test_conformance.py`` is the executable definition of this contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jobbers.models import (
    Event,
    MaintenanceReport,
    NewTask,
    Outcome,
    Page,
    QueueConfig,
    QueueStats,
    Status,
    TaskDefinition,
    TaskFilter,
    TaskRecord,
    WorkerInfo,
)


class StoreError(Exception):
    """Base class for errors a store raises on purpose."""


class DuplicateTaskConflict(StoreError):
    """Submitted ids already exist with another payload; nothing was stored."""

    def __init__(self, task_ids: Sequence[str]) -> None:
        super().__init__(
            "task id(s) already used with another payload: " + ", ".join(task_ids[:10])
        )
        self.task_ids = list(task_ids)


class TaskNotFound(StoreError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


@dataclass(frozen=True)
class Submitted:
    task: TaskRecord
    #: False when the id already existed with the same payload (an idempotent repeat).
    created: bool


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


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str] = field(default_factory=list)
    not_cancellable: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class Store(Protocol):
    """The contract. Times are epoch seconds; ``now`` parameters exist so tests can steer time."""

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
    ) -> list[TaskRecord]:
        """Move up to ``limit`` ready tasks to ``started`` for this worker, honouring each queue's
        pause flag, global concurrency limit and rate limit; due scheduled tasks count as ready."""
        ...

    async def wait_for_change(self, timeout: float) -> None:
        """Return soon after another writer changed the store, or after ``timeout``."""
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
        """Newest first; ``cursor`` is the opaque value a previous page returned."""
        ...

    async def events(self, after: int, limit: int) -> list[Event]: ...

    async def latest_event(self) -> int:
        """The newest event's cursor (0 before the first): where a new reader of the feed starts
        when only what happens from now on matters. Pruning old events never lowers it."""
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
        """Delete completed, failed and cancelled tasks finished before ``before``."""
        ...

    async def close(self) -> None: ...


DEFAULT_STORE_URL = "sqlite:///jobbers.db"


def open_store(url: str, *, inline: bool = False) -> Store:
    """The one place a URL becomes a backend. ``inline``: the caller's event loop does nothing but
    call this store (a blocking producer), so a backend that hands calls to a thread may run them
    on the calling thread instead."""
    if url.startswith("sqlite:///"):
        from jobbers.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), inline=inline)
    if url.startswith("sqlite://"):
        raise ValueError(f"bad store URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    raise ValueError(f"unsupported store URL {url!r}: expected sqlite:///path.db")
