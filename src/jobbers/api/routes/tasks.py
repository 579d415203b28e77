"""Submitting, reading, listing and cancelling tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from jobbers import intake, tracing
from jobbers.actions import cancel_task, read_task
from jobbers.actions import statuses as task_statuses
from jobbers.api.batching import SubmitBatcher
from jobbers.api.errors import JSONResponse, error, responses
from jobbers.api.schemas import (
    PATH_ID_PATTERN,
    CancelOut,
    StatusesOut,
    TaskIds,
    TaskListOut,
    TaskOut,
)
from jobbers.http.deps import CatalogDep, StoreDep
from jobbers.intake import BulkSubmission, TaskSubmission
from jobbers.intake.submission import QueueName, TaskName
from jobbers.models import Status, TaskFilter
from jobbers.present import bulk_json, cancel_json, listed_task_json, task_json
from jobbers.store.base import Store
from jobbers.waiting import MAX_WAIT, TaskWaiters

router = APIRouter(tags=["tasks"])

SUBMIT_RESPONSES = responses(
    404, 409, 413, 422, ok={"model": TaskOut, "description": "The id existed with this payload"}
)
#: In list answers (``GET /tasks``, ``GET /dead-letter``), kwargs or a result larger than this
#: as JSON is left out (``omitted`` names it): a page then carries at most about
#: ``limit * 2 * LIST_VALUE_BYTES`` of them, however large the stored values are.
LIST_VALUE_BYTES = 16 * 1024
TaskIdPath = Annotated[str, Path(min_length=1, max_length=256, pattern=PATH_ID_PATTERN)]


@router.post(
    "/tasks",
    status_code=201,
    response_model=TaskOut,
    responses=SUBMIT_RESPONSES,
)
async def submit(body: TaskSubmission, request: Request, catalog: CatalogDep) -> JSONResponse:
    """Submit one task. A client-chosen id makes a retried call safe: 200 with the first one."""
    batcher: SubmitBatcher = request.app.state.batcher
    trace = tracing.from_headers(request.headers)
    done = await intake.submit_one(body, catalog, batcher.submit, trace)
    return JSONResponse(task_json(done.task), status_code=201 if done.created else 200)


router.add_api_route(
    "/submit-task",
    submit,
    methods=["POST"],
    status_code=201,
    response_model=TaskOut,
    responses=SUBMIT_RESPONSES,
    summary="Submit (another name for POST /tasks)",
)


@router.post(
    "/tasks/bulk",
    status_code=201,
    response_model=TaskListOut,
    responses=responses(404, 409, 413, 422),
)
async def submit_bulk(
    body: BulkSubmission, request: Request, store: StoreDep, catalog: CatalogDep
) -> JSONResponse:
    """Up to 10,000 tasks in one store call; one bad entry rejects the whole batch."""
    trace = tracing.from_headers(request.headers)
    done = await intake.submit_bulk(body.tasks, catalog, store, trace)
    return JSONResponse(bulk_json(done), status_code=201)


@router.get("/tasks/{task_id}", response_model=TaskOut, responses=responses(404))
async def get_task(task_id: TaskIdPath, store: StoreDep) -> JSONResponse:
    return JSONResponse(await read_task(store, task_id))


@router.get("/tasks/{task_id}/wait", response_model=TaskOut, responses=responses(404, 422))
async def wait_task(
    task_id: TaskIdPath,
    request: Request,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT, allow_inf_nan=False)] = 30.0,
) -> JSONResponse:
    """The task as soon as it is final, or as it stands after ``timeout`` seconds (at most 60):
    a round trip without polling."""
    waiters: TaskWaiters = request.app.state.waiters
    return JSONResponse(task_json(await waiters.until_final(task_id, timeout)))


@router.get("/tasks", response_model=TaskListOut, responses=responses(422))
async def list_tasks(
    store: StoreDep,
    status: Status | None = None,
    queue: QueueName | None = None,
    name: TaskName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> JSONResponse:
    """Newest first; pass the answer's ``cursor`` back for the next page (null: no more)."""
    return await page_json(store, TaskFilter(status=status, queue=queue, name=name), limit, cursor)


async def page_json(
    store: Store, filters: TaskFilter, limit: int, cursor: str | None
) -> JSONResponse:
    """One page of a task listing, or a 422 for a cursor no page ever returned."""
    try:
        page = await store.query(filters, limit, cursor or None)
    except (ValueError, OverflowError):
        return error(422, "bad cursor: pass back the cursor a previous page returned")
    latest = [(t.id, t.attempts[-1].number) for t in page.tasks if t.attempts]
    progress = await store.progress(latest)
    tasks = [listed_task_json(t, LIST_VALUE_BYTES, progress.get(t.id)) for t in page.tasks]
    return JSONResponse({"tasks": tasks, "cursor": page.cursor})


@router.post("/task-status/bulk", response_model=StatusesOut, responses=responses(413, 422))
async def statuses(body: TaskIds, store: StoreDep) -> JSONResponse:
    """Statuses of up to 10,000 tasks in one answer; unknown ids are left out."""
    return JSONResponse({"statuses": await task_statuses(store, body.task_ids)})


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut, responses=responses(404, 409))
async def cancel(task_id: TaskIdPath, store: StoreDep) -> JSONResponse:
    """Cancelled at once in every unfinished status; a running task's worker stops it within a
    second and its late result is discarded."""
    return JSONResponse(task_json(await cancel_task(store, task_id)))


@router.post("/tasks/cancel", response_model=CancelOut, responses=responses(413, 422))
async def cancel_many(body: TaskIds, store: StoreDep) -> JSONResponse:
    return JSONResponse(cancel_json(await store.cancel(body.task_ids)))
