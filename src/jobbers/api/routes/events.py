"""The change feed: every status transition in order, resumable from a cursor."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from jobbers.api.errors import JSONResponse, error, responses
from jobbers.api.schemas import CursorOut, EventsOut
from jobbers.http.deps import StoreDep
from jobbers.models import Event
from jobbers.present import event_json
from jobbers.store.base import BadCursor, Store
from jobbers.waiting import MAX_WAIT

router = APIRouter(tags=["events"])

#: Cursors are opaque to clients: what a store returned, passed back unchanged.
CURSOR_MAX = 64
#: How often a long poll reads the feed again while nothing is new.
FEED_POLL = 0.02


@router.get("/events/latest", response_model=CursorOut, responses=responses())
async def latest(store: StoreDep) -> JSONResponse:
    """The newest cursor: a reader that cares only about changes from now on starts here."""
    return JSONResponse({"cursor": str(await store.latest_event())})


@router.get("/events", response_model=EventsOut, responses=responses(422))
async def events(
    store: StoreDep,
    after: Annotated[str | None, Query(max_length=CURSOR_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, allow_inf_nan=False)] = 0.0,
) -> JSONResponse:
    """Events after ``after``; the answer's ``cursor`` resumes without skips or repeats.

    With ``wait``, a long poll: when nothing is new yet, the answer comes with the first new
    event, or empty after ``wait`` seconds (at most 60)."""
    try:
        found = await _next_events(store, after, limit, wait)
    except BadCursor as exc:
        return error(422, str(exc))
    cursor = found[-1].cursor if found else (after or "0")
    return JSONResponse({"events": [event_json(e) for e in found], "cursor": cursor})


async def _next_events(store: Store, after: str | None, limit: int, wait: float) -> list[Event]:
    """Read again every :data:`FEED_POLL` seconds until something is new or ``wait`` ends.

    A poll, not ``store.wait_for_change``: that wake-up is shared by the whole store (another
    caller's read can consume it, and on SQLite a commit by another process counts as unseen
    until someone reads), so a waiter built on it either sleeps through an event or spins. A
    feed read with nothing new costs tens of microseconds, and one waiting reader (an Airflow
    scheduler whose slots are all taken) reads fifty times a second at most."""
    found = await store.events(after, limit)
    if found or wait <= 0:
        return found
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not found and (remaining := deadline - loop.time()) > 0:
        await asyncio.sleep(min(remaining, FEED_POLL))
        found = await store.events(after, limit)
    return found
