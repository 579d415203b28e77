"""Bearer-token check for every route but ``/healthz``, done before any body is read.

It is ASGI middleware rather than a FastAPI dependency so that nothing, not even ``/docs``,
``/openapi.json`` or a 404, answers an unauthenticated caller. The token is compared in constant
time and never logged.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbers.api.limits import send_json

OPEN_PATHS = frozenset({"/healthz"})


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _authorized(self, scope: Scope) -> bool:
        header: bytes = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credentials.strip(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        detail = "missing or wrong API token: send the header 'Authorization: Bearer <token>'"
        await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
