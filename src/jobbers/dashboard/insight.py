"""What the dashboard works out from several store reads: the warnings an operator must not miss,
a worker's own page, every queue that exists in any sense, and the per-task-name breakdown.

A worker counts as live while it renewed within :data:`SILENT` seconds: a running worker renews
several times a second (at most every ``renew_cap``), so a longer silence means it is stopped,
hung or cut off from the store, and the tasks of queues only it served are stranded."""

from __future__ import annotations

import statistics
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobbers.models import QueueStats, Status, TaskFilter, TaskRecord, WorkerInfo
from jobbers.store.base import Store

SILENT = 15.0
#: Seconds a worker's history or the per-name breakdown is reused: pages refresh every second,
#: and those read thousands of tasks where the rest of a page reads sums.
REUSE = 5.0
#: Per status, how many of the newest kept tasks a worker's page or the breakdown reads.
SCAN = 1000
FINISHED = (Status.COMPLETED, Status.FAILED, Status.DEAD, Status.CANCELLED)


def live(workers: Sequence[WorkerInfo], now: float) -> list[WorkerInfo]:
    return [w for w in workers if now - w.last_seen <= SILENT]


@dataclass(frozen=True)
class Warning:
    kind: str
    text: str
    #: The queue or worker it is about, for a link and a test to find it.
    subject: str


def warnings(
    stats: Sequence[QueueStats], workers: Sequence[WorkerInfo], now: float
) -> list[Warning]:
    alive = live(workers, now)
    served = {q for w in alive for q in w.queues}
    out: list[Warning] = []
    for s in sorted(stats, key=lambda s: s.config.name):
        name = s.config.name
        waiting = s.depth + s.scheduled
        if waiting and name not in served:
            out.append(
                Warning(
                    "no-worker",
                    f"queue {name} has {waiting} waiting task(s) and no live worker serves it",
                    name,
                )
            )
            continue
        names = s.unrunnable
        if names:
            listed = ", ".join(f"{n} ({c})" for n, c in sorted(names.items()))
            out.append(
                Warning(
                    "unrunnable",
                    f"queue {name}: no live worker has the code for {listed}",
                    name,
                )
            )
    for w in workers:
        silent = now - w.last_seen
        if silent > SILENT:
            out.append(
                Warning(
                    "silent",
                    f"worker {w.id} stopped renewing {silent:.0f} s ago"
                    f" ({w.running} task(s) were running)",
                    w.id,
                )
            )
    return out


def queue_names(
    stats: Sequence[QueueStats], workers: Sequence[WorkerInfo], with_tasks: set[str]
) -> list[str]:
    """Configured queues, queues holding tasks and queues a registered worker serves: a queue can
    be paused before its first task arrives."""
    return sorted(
        {s.config.name for s in stats} | with_tasks | {q for w in workers for q in w.queues}
    )


def pid(worker_id: str) -> str:
    """Worker ids read ``host:pid:random``; another form (a custom id) shows no pid."""
    parts = worker_id.split(":")
    return parts[-2] if len(parts) >= 3 and parts[-2].isdigit() else "-"


async def recent(store: Store, status: Status, limit: int = SCAN) -> list[TaskRecord]:
    out: list[TaskRecord] = []
    cursor: str | None = None
    while len(out) < limit:
        page = await store.query(TaskFilter(status=status), min(500, limit - len(out)), cursor)
        out.extend(page.tasks)
        cursor = page.cursor
        if cursor is None:
            break
    return out


async def worker_page(store: Store, worker_id: str, now: float) -> dict[str, Any] | None:
    """The worker's facts, its running tasks, and the attempts it finished among the newest kept
    tasks (None when it is not registered and ran none of those)."""
    info = next((w for w in await store.workers() if w.id == worker_id), None)
    running = [t for t in await recent(store, Status.STARTED) if t.worker == worker_id]
    kept = _histories.get(store)
    if kept is not None and kept[1] == worker_id and now - kept[0] < REUSE:
        processed, failed, latest = kept[2]
    else:
        processed, failed, latest = await _history(store, worker_id)
        _histories[store] = (now, worker_id, (processed, failed, latest))
    if info is None and not latest and not running:
        return None
    return {
        "id": worker_id,
        "info": info,
        "pid": pid(worker_id),
        "uptime": None if info is None else max(0.0, now - info.started_at),
        "seen_ago": None if info is None else max(0.0, now - info.last_seen),
        "alive": info is not None and now - info.last_seen <= SILENT,
        "running": running,
        "processed": processed,
        "failed": failed,
        "latest": latest,
        "scan": SCAN,
    }


History = tuple[int, int, list[TaskRecord]]
_histories: weakref.WeakKeyDictionary[Store, tuple[float, str, History]] = (
    weakref.WeakKeyDictionary()
)


async def _history(store: Store, worker_id: str) -> History:
    """Attempts the worker completed and failed among the newest kept finished tasks, and the
    latest 20 of those tasks (reused for :data:`REUSE` seconds: it reads thousands of tasks)."""
    processed = failed = 0
    latest: list[TaskRecord] = []
    for status in FINISHED:
        for task in await recent(store, status):
            mine = [a for a in task.attempts if a.worker == worker_id]
            if not mine:
                continue
            latest.append(task)
            processed += sum(1 for a in mine if a.outcome == "completed")
            failed += sum(1 for a in mine if a.outcome in ("failed", "timeout"))
    latest.sort(key=lambda t: t.finished_at or 0.0, reverse=True)
    return processed, failed, latest[:20]


@dataclass(frozen=True)
class NameRow:
    name: str
    count: int
    failed: int
    p50: float | None
    p95: float | None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.count if self.count else 0.0


_breakdowns: weakref.WeakKeyDictionary[Store, tuple[float, float, list[NameRow]]] = (
    weakref.WeakKeyDictionary()
)


async def by_name(store: Store, since: float, now: float) -> list[NameRow]:
    """:func:`breakdown`, reused for :data:`REUSE` seconds per store and window."""
    kept = _breakdowns.get(store)
    if kept is not None and kept[1] == since and now - kept[0] < REUSE:
        return kept[2]
    rows = await breakdown(store, since)
    _breakdowns[store] = (now, since, rows)
    return rows


async def breakdown(store: Store, since: float) -> list[NameRow]:
    """Per task name, the tasks that finished since ``since`` among the newest kept of each
    finishing status: count, share that failed (failed or dead) and run-time percentiles."""
    runs: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for status in FINISHED:
        for task in await recent(store, status):
            if task.finished_at is None or task.finished_at < since:
                continue
            c = counts.setdefault(task.name, [0, 0])
            c[0] += 1
            c[1] += status in (Status.FAILED, Status.DEAD)
            if task.started_at is not None:
                runs.setdefault(task.name, []).append(task.finished_at - task.started_at)
    out = []
    for name, (count, failed) in sorted(counts.items()):
        values = sorted(runs.get(name, []))
        out.append(NameRow(name, count, failed, _quantile(values, 0.5), _quantile(values, 0.95)))
    return out


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
