"""The change feed: every status transition in order, resumable from a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobbers.api.deps import StoreDep
from jobbers.api.errors import JSONResponse, responses
from jobbers.api.schemas import CursorOut, EventsOut
from jobbers.api.serialize import event_json

router = APIRouter(tags=["events"])

#: Cursors are decimal strings of an increasing integer that fits SQLite's 64-bit INTEGER.
CURSOR_PATTERN = r"^[0-9]{1,18}$"


@router.get("/events/latest", response_model=CursorOut, responses=responses())
async def latest(store: StoreDep) -> JSONResponse:
    """The newest cursor: a reader that cares only about changes from now on starts here."""
    return JSONResponse({"cursor": str(await store.latest_event())})


@router.get("/events", response_model=EventsOut, responses=responses(422))
async def events(
    store: StoreDep,
    after: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    """Events after ``after``; the answer's ``cursor`` resumes without skips or repeats."""
    start = int(after) if after is not None else 0
    found = await store.events(start, limit)
    cursor = str(found[-1].cursor) if found else str(start)
    return JSONResponse({"events": [event_json(e) for e in found], "cursor": cursor})
