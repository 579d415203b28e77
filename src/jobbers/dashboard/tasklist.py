"""The task list's rows: each task with its queue wait, run time, a short masked kwargs preview
and a result or error summary, filtered and sorted as the operator asked.

The store filters by status, queue and name and pages newest first. A filter it has no index for
(worker, time) or an order other than newest first reads up to :data:`SCAN` of the newest
matching tasks and filters or sorts those: bounded work on every backend, said on the page."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from jobbers.models import TERMINAL, Status, TaskFilter, TaskRecord
from jobbers.present import task_json
from jobbers.store.base import Store

PAGE = 50
#: How many of the newest matching tasks a scan reads (worker or time filters, sorting).
SCAN = 2000
PREVIEW = 80
STATUSES = [s.value for s in Status]
SINCE = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
SORTS = ("submitted", "name", "queue", "status", "worker", "wait", "duration")


@dataclass(frozen=True)
class Query:
    status: str = ""
    queue: str = ""
    name: str = ""
    worker: str = ""
    since: str = ""
    sort: str = ""
    order: str = "desc"

    @property
    def store_filter(self) -> TaskFilter:
        return TaskFilter(
            status=Status(self.status) if self.status in STATUSES else None,
            queue=self.queue or None,
            name=self.name or None,
        )

    @property
    def scans(self) -> bool:
        """True when the store alone cannot answer: the list is read by a bounded scan."""
        return bool(self.worker or self.since in SINCE or self.sort in SORTS[1:])

    def params(self) -> dict[str, str]:
        return {
            "status": self.status,
            "queue": self.queue,
            "name": self.name,
            "worker": self.worker,
            "since": self.since,
            "sort": self.sort,
            "order": self.order,
        }


def _wait(task: TaskRecord) -> float | None:
    if task.started_at is None:
        return None
    ready = max(task.submitted_at, task.due_at or 0.0)
    return max(0.0, task.started_at - ready)


def _duration(task: TaskRecord, now: float) -> float | None:
    if task.started_at is None:
        return None
    end = task.finished_at if task.finished_at is not None else now
    if task.status in TERMINAL and task.finished_at is None:
        return None
    return max(0.0, end - task.started_at)


def _matches(task: TaskRecord, query: Query, now: float) -> bool:
    if query.worker and not any(
        w == query.worker for w in (task.worker, *(a.worker for a in task.attempts))
    ):
        return False
    window = SINCE.get(query.since)
    return window is None or task.submitted_at >= now - window


def _key(query: Query, now: float) -> Any:
    def key(task: TaskRecord) -> Any:
        match query.sort:
            case "name":
                return task.name
            case "queue":
                return task.queue
            case "status":
                return task.status.value
            case "worker":
                return task.worker or ""
            case "wait":
                return _wait(task) or -1.0
            case "duration":
                return _duration(task, now) or -1.0
        return task.submitted_at

    return key


async def scan(store: Store, query: Query, limit: int = SCAN) -> list[TaskRecord]:
    """Up to ``limit`` of the newest tasks the store filter matches, then the other filters."""
    now = time.time()
    found: list[TaskRecord] = []
    cursor: str | None = None
    read = 0
    while read < limit:
        page = await store.query(query.store_filter, min(500, limit - read), cursor)
        read += len(page.tasks)
        found.extend(t for t in page.tasks if _matches(t, query, now))
        cursor = page.cursor
        if cursor is None:
            break
    return found


async def rows(
    store: Store, query: Query, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of rows, and the cursor of the next (None when scanning: one sorted page)."""
    now = time.time()
    if query.scans:
        tasks = await scan(store, query)
        if query.sort in SORTS[1:]:
            tasks.sort(key=_key(query, now), reverse=query.order != "asc")
        tasks, next_cursor = tasks[:PAGE], None
    else:
        try:
            page = await store.query(query.store_filter, PAGE, cursor or None)
        except (ValueError, OverflowError):
            page = await store.query(query.store_filter, PAGE, None)
        tasks, next_cursor = page.tasks, page.cursor
    progress = await _progress(store, [t for t in tasks if t.status == Status.STARTED])
    return [row(t, now, progress.get(t.id)) for t in tasks], next_cursor


async def _progress(store: Store, running: list[TaskRecord]) -> dict[str, tuple[float, str]]:
    """Latest progress of the running tasks shown (one read each: a page holds at most 50)."""
    out: dict[str, tuple[float, str]] = {}
    for task in running:
        for note in await store.notes(task.id):
            if note.attempt == task.attempt and note.progress is not None:
                out[task.id] = (note.progress, note.message)
    return out


def preview(kwargs: Any) -> str:
    """The masked kwargs as one line, cut to :data:`PREVIEW` characters."""
    text = json.dumps(kwargs, separators=(", ", "="), sort_keys=True, default=str)
    text = text.removeprefix("{").removesuffix("}").replace('"', "")
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def _summary(body: dict[str, Any]) -> str:
    if body["error"]:
        return f"{body['error']['type']}: {body['error']['message']}"[:120]
    if body["status"] == Status.COMPLETED.value:
        text = json.dumps(body["result"], default=str)
        return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"
    return ""


def row(task: TaskRecord, now: float, progress: tuple[float, str] | None) -> dict[str, Any]:
    """A task as the list shows it; everything shown of kwargs and results is masked first."""
    body = task_json(task)
    body["wait"] = _wait(task)
    body["duration"] = _duration(task, now)
    body["preview"] = preview(body["kwargs"])
    body["summary"] = _summary(body)
    if task.status == Status.COMPLETED:
        body["progress"] = {"fraction": 1.0, "message": ""}
    elif progress is not None:
        body["progress"] = {"fraction": progress[0], "message": progress[1]}
    else:
        body["progress"] = None
    return body


async def cancellable_ids(store: Store, query: Query, limit: int = 10_000) -> list[str]:
    """Every task the filter matches that may still be cancelled, up to ``limit``."""
    if query.status in STATUSES and Status(query.status) in TERMINAL:
        return []
    return [t.id for t in await scan(store, query, limit) if t.status not in TERMINAL][:limit]
