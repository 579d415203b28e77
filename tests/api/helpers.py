"""Moving tasks along by hand, as a worker would, so API tests can reach any status quickly."""

from __future__ import annotations

from typing import Any

from jobbers.models import ErrorInfo, Outcome, TaskRecord
from jobbers.store.base import Report, Store

WORKER = "test-host:1:abcd"


async def run_to(
    store: Store, task_id: str, kind: str, result: Any = None, queue: str = "default"
) -> TaskRecord | None:
    """Claim ``task_id`` and report ``kind`` (completed / failed) for it."""
    claimed = await store.claim(WORKER, [queue], 100, lease=30.0)
    mine = {t.id: t for t in claimed}
    assert task_id in mine, f"{task_id} was not claimable"
    error = ErrorInfo("RuntimeError", "boom", "Traceback ...") if kind == "failed" else None
    outcome = Outcome(kind, result=result, error=error)  # type: ignore[arg-type]
    (record,) = await store.finish(WORKER, [Report(task_id, mine[task_id].attempt, outcome)])
    return record


async def stored_ids(store: Store) -> list[str]:
    from jobbers.models import TaskFilter

    page = await store.query(TaskFilter(), 1000)
    return [t.id for t in page.tasks]
