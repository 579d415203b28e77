"""The dead letter queue: tasks whose retries are spent, kept with their history to act on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from jobbers.api.errors import JSONResponse, error, responses
from jobbers.api.routes.tasks import TaskIdPath, page_json
from jobbers.api.schemas import (
    DeletedOut,
    Resubmission,
    ResubmittedOut,
    TaskIds,
    TaskListOut,
)
from jobbers.http.deps import StoreDep
from jobbers.intake.submission import MAX_BATCH, QueueName, TaskName
from jobbers.models import Status, TaskFilter
from jobbers.store.base import Store, TaskNotFound

router = APIRouter(tags=["dead letter"])


@router.get("/dead-letter", response_model=TaskListOut, responses=responses(422))
async def list_dead(
    store: StoreDep,
    queue: QueueName | None = None,
    name: TaskName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> JSONResponse:
    filters = TaskFilter(status=Status.DEAD, queue=queue, name=name)
    return await page_json(store, filters, limit, cursor)


async def _dead_ids(store: Store, filters: TaskFilter) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < MAX_BATCH:
        page = await store.query(filters, min(1000, MAX_BATCH - len(ids)), cursor)
        ids.extend(t.id for t in page.tasks)
        cursor = page.cursor
        if cursor is None:
            break
    return ids


@router.post("/dead-letter/resubmit", response_model=ResubmittedOut, responses=responses(413, 422))
async def resubmit(body: Resubmission, store: StoreDep) -> JSONResponse:
    """Run dead tasks again with the same id and a fresh retry budget (up to 10,000 a call)."""
    if body.task_ids is not None:
        ids = list(dict.fromkeys(body.task_ids))
    else:
        assert body.filter is not None
        filters = TaskFilter(status=Status.DEAD, queue=body.filter.queue, name=body.filter.name)
        ids = await _dead_ids(store, filters)
    moved = await store.resubmit(ids) if ids else []
    moved_set = set(moved)
    return JSONResponse(
        {"resubmitted": moved, "not_resubmitted": [i for i in ids if i not in moved_set]}
    )


class BulkDeletedOut(BaseModel):
    deleted: list[str]
    not_deleted: list[str]


@router.post("/dead-letter/delete", response_model=BulkDeletedOut, responses=responses(413, 422))
async def delete_dead_many(body: TaskIds, store: StoreDep) -> JSONResponse:
    """Remove up to 10,000 dead tasks in one store call; ids not dead (or unknown) stay."""
    ids = list(dict.fromkeys(body.task_ids))
    deleted = set(await store.delete(ids, [Status.DEAD])) if ids else set()
    return JSONResponse(
        {
            "deleted": [i for i in ids if i in deleted],
            "not_deleted": [i for i in ids if i not in deleted],
        }
    )


@router.delete("/dead-letter/{task_id}", response_model=DeletedOut, responses=responses(404, 409))
async def delete_dead(task_id: TaskIdPath, store: StoreDep) -> JSONResponse:
    """Remove a dead task for good; a task in any other status is left alone (409)."""
    deleted = await store.delete([task_id], [Status.DEAD])
    if deleted:
        return JSONResponse({"deleted": deleted})
    found = await store.get([task_id])
    if task_id not in found:
        raise TaskNotFound(task_id)
    status = found[task_id].status.value
    return error(409, f"task {task_id!r} is {status}, not dead: only dead tasks are deleted here")
