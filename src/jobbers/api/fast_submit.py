"""``POST /tasks`` and ``POST /tasks/bulk`` without FastAPI's per-request machinery.

Solving dependencies, parsing and validating the body through FastAPI, and walking its middleware
and router cost more than the submission itself when one client submits tasks one by one. This
ASGI layer sits inside the auth and body-limit middleware (so both still apply) and answers a
well-formed submission directly: the same model validates it, the same catalog builds it, the
same batcher or store call writes it, and the same serializer answers it. Anything it does not
take on its happy path (a query string, another content type, a body that does not validate, an
unknown task name, kwargs that do not fit) goes to the FastAPI route unchanged, before anything
is stored, so every error keeps the one shape and status the documented routes give it.
"""

from __future__ import annotations

import logging

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobbers.api.batching import SubmitBatcher
from jobbers.api.errors import JSONResponse, error
from jobbers.api.limits import replay
from jobbers.api.schemas import BulkSubmission, TaskSubmission
from jobbers.api.serialize import task_json
from jobbers.api.submissions import (
    DuplicateInBatch,
    TaskCatalog,
    UnknownTaskNames,
    build_tasks,
    dedupe,
)
from jobbers.params import InvalidKwargs
from jobbers.store.base import DuplicateTaskConflict, Store, StoreUnavailable

log = logging.getLogger("jobbers.api")

ONE = frozenset({"/tasks", "/submit-task"})
BULK = "/tasks/bulk"


class _Fallback(Exception):
    """Not for this fast path: the FastAPI route answers instead."""


class FastSubmit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or (path not in ONE and path != BULK)
            or scope.get("query_string")
            or not _json_content(scope)
        ):
            await self.app(scope, receive, send)
            return
        body, tail = await _read(receive)
        if tail is None:
            try:
                response = await self._answer(scope, path, body)
            except _Fallback:
                pass
            else:
                await response(scope, receive, send)
                return
        message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay([message] if tail is None else [message, tail], receive), send)

    async def _answer(self, scope: Scope, path: str, body: bytes) -> JSONResponse:
        state = scope["app"].state
        catalog: TaskCatalog = state.catalog
        bulk = path == BULK
        try:
            try:
                data = orjson.loads(body)
                if bulk:
                    subs = BulkSubmission.model_validate(data).tasks
                else:
                    subs = [TaskSubmission.model_validate(data)]
                await catalog.refresh_if_stale()
                new = await build_tasks(subs, catalog, bulk=bulk)
            except (orjson.JSONDecodeError, ValidationError, UnknownTaskNames, InvalidKwargs):
                raise _Fallback from None
            if bulk:
                store: Store = state.store
                unique, positions = dedupe(new)
                done = await store.submit(unique) if unique else []
                tasks = [task_json(d.task) for d in done]
                return JSONResponse({"tasks": [tasks[i] for i in positions]}, status_code=201)
            batcher: SubmitBatcher = state.batcher
            one = await batcher.submit(new[0])
            return JSONResponse(task_json(one.task), status_code=201 if one.created else 200)
        except (DuplicateTaskConflict, DuplicateInBatch) as exc:
            return error(409, str(exc))
        except StoreUnavailable as exc:
            log.warning("store unavailable on POST %s: %s", path, exc)
            return error(503, str(exc))


def _json_content(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json"
    return False


async def _read(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body; or what came before a message that is not body (a disconnect), and that
    message, for the app to see."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None
