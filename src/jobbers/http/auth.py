"""Bearer-token check for every route but ``/healthz``, done before any body is read.

It is ASGI middleware rather than a FastAPI dependency so that nothing, not even ``/docs``,
``/openapi.json`` or a 404, answers an unauthenticated caller. The token is compared in constant
time and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbers.http.asgi import send_json

OPEN_PATHS = frozenset({"/healthz"})


def bearer_matches(scope: Scope, token: bytes) -> bool:
    """The request's ``Authorization: Bearer`` credentials are ``token`` (constant time)."""
    header: bytes = dict(scope["headers"]).get(b"authorization", b"")
    scheme, _, credentials = header.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credentials.strip(), token)


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str, open_prefixes: Sequence[str] = ()) -> None:
        """``open_prefixes``: paths at or under these guard themselves (the dashboard's session
        cookie, which also opens the API's own documentation to a logged-in browser)."""
        self.app = app
        self._token = token.encode()
        self._open_prefixes = tuple(open_prefixes)

    def _authorized(self, scope: Scope) -> bool:
        return bearer_matches(scope, self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded_elsewhere = any(
            path == prefix or path.startswith(prefix + "/") for prefix in self._open_prefixes
        )
        if scope["type"] != "http" or path in OPEN_PATHS or guarded_elsewhere:
            await self.app(scope, receive, send)
            return
        if self._authorized(scope):
            await self.app(scope, receive, send)
            return
        detail = "missing or wrong API token: send the header 'Authorization: Bearer <token>'"
        await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
