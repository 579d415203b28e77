"""``POST /tasks`` and ``POST /tasks/bulk`` in front of FastAPI's per-request machinery.

Solving dependencies, parsing and validating the body through FastAPI, and walking its middleware
(error handling, telemetry, body limits, auth) and router cost more than the submission itself
when one client submits tasks one by one. :class:`FastSubmit` is called before all of it, and
takes on a submission only when that stack would let it through untouched: the API token (when
one is set) matches, and a declared ``Content-Length`` is within the route's body limit. It then
answers a well-formed submission directly, through the same intake as the route (the same model
validates it, the same catalog builds it, the same batcher or store call writes it) and the same
serializer. Anything else
(no or a wrong token, a chunked or oversized body, a query string, another content type, a body
that does not validate, an unknown task name, kwargs that do not fit) goes through the whole
stack unchanged, before anything is stored, so every error keeps the one shape and status the
documented routes give it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobbers import tracing
from jobbers.api.batching import SubmitBatcher
from jobbers.api.errors import JSONResponse, error, unexpected
from jobbers.compact_json import exact_loads
from jobbers.errors import InvalidKwargs, UnknownTask
from jobbers.http.asgi import replay
from jobbers.http.auth import bearer_matches
from jobbers.http.limits import BodyLimits
from jobbers.intake import Catalog, parse_bulk, parse_one, submit_bulk, submit_one
from jobbers.present import bulk_json, task_json
from jobbers.store.base import DuplicateTaskConflict, Store, StoreUnavailable

log = logging.getLogger("jobbers.api")

ONE = frozenset({"/tasks", "/submit-task"})
BULK = "/tasks/bulk"


class _Fallback(Exception):
    """Not for this fast path: the FastAPI route answers instead."""


class FastSubmit:
    """Answers the submissions it takes; hands everything else to ``app`` (the full stack)."""

    def __init__(self, app: ASGIApp, state: State, token: str | None, limits: BodyLimits) -> None:
        """``limits``: the body limits the stack enforces, so both take the same bodies."""
        self.app = app
        self.state = state
        self._token = token.encode() if token else None
        self._limits = {path: limits.limit_for(path) for path in (*ONE, BULK)}

    def takes(self, scope: Scope) -> bool:
        """A JSON submission the full stack would pass to its route as it is."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            return False
        limit = self._limits.get(scope["path"])
        if limit is None:
            return False
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        if length is None or not length.isdigit() or int(length) > limit:
            return False
        if content_type is None or not _json_type(content_type):
            return False
        return self._token is None or bearer_matches(scope, self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, tail = await _read(receive)
        if tail is None:
            try:
                response = await self._answer(scope["path"], body, _traceparent(scope))
            except _Fallback:
                pass
            else:
                await response(scope, receive, send)
                return
        message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay([message] if tail is None else [message, tail], receive), send)

    async def _answer(self, path: str, body: bytes, trace: str | None) -> JSONResponse:
        try:
            return await self._submit(path == BULK, body, trace)
        except _Fallback:
            raise
        except DuplicateTaskConflict as exc:
            return error(409, str(exc))
        except StoreUnavailable as exc:
            log.warning("store unavailable on POST %s: %s", path, exc)
            return error(503, str(exc))
        except Exception:
            return unexpected("POST", path)

    async def _submit(self, bulk: bool, body: bytes, trace: str | None) -> JSONResponse:
        state = self.state
        catalog: Catalog = state.catalog
        try:
            data = _decoded(body)
            if bulk:
                store: Store = state.store
                done = await submit_bulk(parse_bulk(data), catalog, store, trace)
                return JSONResponse(bulk_json(done), status_code=201)
            batcher: SubmitBatcher = state.batcher
            one = await submit_one(parse_one(data), catalog, batcher.submit, trace)
        except (ValidationError, UnknownTask, InvalidKwargs):
            raise _Fallback from None
        return JSONResponse(task_json(one.task), status_code=201 if one.created else 200)


def _traceparent(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return tracing.valid(value.decode("latin-1"))
    return None


def _decoded(body: bytes) -> Any:
    """The body as ``json`` reads it (an integer of any size exactly); what it cannot read goes
    to the full stack, whose answer says why."""
    try:
        return exact_loads(body)
    except (ValueError, RecursionError):
        raise _Fallback from None


def _json_type(value: bytes) -> bool:
    kind: bytes = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json"


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
