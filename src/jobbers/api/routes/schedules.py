"""Schedules: list, create, read, change (enable, disable ...) and delete; each answer shows the
next fire times."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel
from starlette.responses import Response

from jobbers import scheduling
from jobbers.api.errors import JSONResponse, error, responses
from jobbers.http.deps import CatalogDep, StoreDep
from jobbers.ids import ID_PATTERN
from jobbers.scheduling import (
    MAX_SCHEDULE_ID,
    ScheduleExists,
    ScheduleIn,
    ScheduleNotFound,
    ScheduleRefused,
    ScheduleUpdate,
    schedule_json,
)

router = APIRouter(tags=["schedules"])

ScheduleIdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=MAX_SCHEDULE_ID)]


class ScheduleOut(BaseModel):
    id: str
    cron: str
    timezone: str
    target: dict[str, Any]
    enabled: bool
    misfire: str
    misfire_grace: float
    concurrency: str
    next_fire: str | None
    next_fires: list[str]
    last_fire: str | None
    last_tasks: list[str]
    created_at: str | None
    updated_at: str | None


class SchedulesOut(BaseModel):
    schedules: list[ScheduleOut]


@router.get("/schedules", response_model=SchedulesOut, responses=responses())
async def list_schedules(store: StoreDep) -> JSONResponse:
    return JSONResponse({"schedules": [schedule_json(s) for s in await store.schedules()]})


@router.post(
    "/schedules",
    status_code=201,
    response_model=ScheduleOut,
    responses=responses(409, 413, 422),
)
async def create_schedule(body: ScheduleIn, store: StoreDep, catalog: CatalogDep) -> JSONResponse:
    """A new schedule; 422 for a bad cron expression, time zone or target (nothing stored)."""
    try:
        schedule = await scheduling.create(store, catalog, body)
    except ScheduleRefused as exc:
        return error(422, exc.details)
    except ScheduleExists as exc:
        return error(409, str(exc))
    return JSONResponse(schedule_json(schedule), status_code=201)


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, responses=responses(404))
async def get_schedule(schedule_id: ScheduleIdPath, store: StoreDep) -> JSONResponse:
    try:
        return JSONResponse(schedule_json(await scheduling.get(store, schedule_id)))
    except ScheduleNotFound as exc:
        return error(404, str(exc))


@router.put(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses=responses(404, 413, 422),
)
async def update_schedule(
    schedule_id: ScheduleIdPath, body: ScheduleUpdate, store: StoreDep, catalog: CatalogDep
) -> JSONResponse:
    """Replace the fields given (``{"enabled": false}`` disables); the next fire time is worked
    out again from now."""
    changes = {f: getattr(body, f) for f in body.model_fields_set if getattr(body, f) is not None}
    try:
        schedule = await scheduling.update(store, catalog, schedule_id, changes)
    except ScheduleRefused as exc:
        return error(422, exc.details)
    except ScheduleNotFound as exc:
        return error(404, str(exc))
    return JSONResponse(schedule_json(schedule))


@router.delete(
    "/schedules/{schedule_id}", status_code=204, responses=responses(404), response_model=None
)
async def delete_schedule(schedule_id: ScheduleIdPath, store: StoreDep) -> Response:
    try:
        await scheduling.delete(store, schedule_id)
    except ScheduleNotFound as exc:
        return error(404, str(exc))
    return Response(status_code=204)
