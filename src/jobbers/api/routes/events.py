"""The change feed: every status transition in order, resumable from a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobbers.api.deps import StoreDep
from jobbers.api.errors import JSONResponse, error, responses
from jobbers.api.schemas import CursorOut, EventsOut
from jobbers.api.serialize import event_json
from jobbers.store.base import BadCursor

router = APIRouter(tags=["events"])

#: Cursors are opaque to clients: what a store returned, passed back unchanged.
CURSOR_MAX = 64


@router.get("/events/latest", response_model=CursorOut, responses=responses())
async def latest(store: StoreDep) -> JSONResponse:
    """The newest cursor: a reader that cares only about changes from now on starts here."""
    return JSONResponse({"cursor": str(await store.latest_event())})


@router.get("/events", response_model=EventsOut, responses=responses(422))
async def events(
    store: StoreDep,
    after: Annotated[str | None, Query(max_length=CURSOR_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    """Events after ``after``; the answer's ``cursor`` resumes without skips or repeats."""
    try:
        found = await store.events(after, limit)
    except BadCursor as exc:
        return error(422, str(exc))
    cursor = found[-1].cursor if found else (after or "0")
    return JSONResponse({"events": [event_json(e) for e in found], "cursor": cursor})
