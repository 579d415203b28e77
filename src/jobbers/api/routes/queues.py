"""Queue limits and pausing, and the workers that serve the queues."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path

from jobbers.api.errors import JSONResponse, responses
from jobbers.api.schemas import QueueOut, QueuesOut, QueueUpdate, WorkersOut
from jobbers.http.deps import StoreDep
from jobbers.ids import ID_PATTERN, MAX_ID_LENGTH
from jobbers.models import QueueConfig, QueueStats
from jobbers.present import queue_json, worker_json
from jobbers.store.base import Store

router = APIRouter(tags=["queues and workers"])


@router.get("/queues", response_model=QueuesOut, responses=responses())
async def list_queues(store: StoreDep) -> JSONResponse:
    stats = await store.queue_stats()
    return JSONResponse({"queues": [queue_json(s.config, s) for s in stats]})


@router.put("/queues/{name}", response_model=QueueOut, responses=responses(413, 422))
async def update_queue(
    name: Annotated[str, Path(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)],
    body: QueueUpdate,
    store: StoreDep,
) -> JSONResponse:
    """Change a queue's limits or pause it; workers pick the change up on their next claim."""
    current = await _stats(store, name)
    config = current.config if current else QueueConfig(name=name)
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    saved = await store.set_queue(dataclasses.replace(config, **changes))
    return JSONResponse(queue_json(saved, await _stats(store, name)))


async def _stats(store: Store, name: str) -> QueueStats | None:
    return next((s for s in await store.queue_stats() if s.config.name == name), None)


@router.get("/workers", response_model=WorkersOut, responses=responses())
async def list_workers(store: StoreDep) -> JSONResponse:
    return JSONResponse({"workers": [worker_json(w) for w in await store.workers()]})
