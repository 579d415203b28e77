"""What a caller does to a task it names by id, written once for the Manager's routes and the
producers: read it (with what its attempts said), cancel it, ask many statuses at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobbers.errors import NotCancellable
from jobbers.models import TaskRecord
from jobbers.present import task_json, with_notes
from jobbers.store.base import Store, TaskNotFound


async def read_task(store: Store, task_id: str) -> dict[str, Any]:
    """The task as ``GET /tasks/{id}`` shows it, or :class:`TaskNotFound`."""
    found = await store.get([task_id])
    if task_id not in found:
        raise TaskNotFound(task_id)
    return with_notes(task_json(found[task_id]), await store.notes(task_id))


async def cancel_task(store: Store, task_id: str) -> TaskRecord:
    """The task, cancelled by this call; :class:`NotCancellable` when it had ended already."""
    result = await store.cancel([task_id])
    if task_id in result.unknown:
        raise TaskNotFound(task_id)
    found = await store.get([task_id])
    if task_id not in found:
        raise TaskNotFound(task_id)
    task = found[task_id]
    if task_id in result.not_cancellable:
        raise NotCancellable(task_id, task.status.value)
    return task


async def statuses(store: Store, task_ids: Sequence[str]) -> dict[str, str]:
    """Each known task's status; unknown ids are left out."""
    found = await store.statuses(task_ids)
    return {k: v.value for k, v in found.items()}
