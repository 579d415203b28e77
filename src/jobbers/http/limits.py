"""Refuse request bodies over a size limit (413): neither FastAPI nor uvicorn caps them.

A declared ``Content-Length`` over the limit is refused before anything is read; a chunked body is
counted as it streams in and refused as soon as it passes the limit. The body that fits is replayed
to the app unchanged. Bulk routes take up to 10,000 items, which cannot fit in the 1 MiB that
bounds a single submission, so they get a larger limit of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbers.http.asgi import replay, send_json

MAX_BODY_BYTES = 1024 * 1024
MAX_BULK_BODY_BYTES = 16 * 1024 * 1024
BULK_PATHS = (
    "/tasks/bulk",
    "/task-status/bulk",
    "/tasks/cancel",
    "/dead-letter/resubmit",
    "/dead-letter/delete",
)


@dataclass(frozen=True)
class BodyLimits:
    """The most bytes a request body may have: ``per_path`` where it names the path, else
    ``max_bytes``."""

    max_bytes: int = MAX_BODY_BYTES
    per_path: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, path: str) -> int:
        return self.per_path.get(path, self.max_bytes)


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def _too_large(self, send: Send, limit: int) -> None:
        detail = f"request body is larger than the limit of {limit} bytes"
        await send_json(send, 413, {"detail": detail}, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the app see the disconnect.
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([body], receive), send)
