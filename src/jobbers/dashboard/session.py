"""Who may use the dashboard, and from where.

The session cookie holds an HMAC of the API token, not the token: every Manager that shares the
token accepts it without server-side state, and changing the token ends every session. The cookie
is HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it). On top of
that every POST must carry an ``Origin`` (or, failing that, ``Referer``) of the dashboard's own
host, so a page elsewhere cannot make a logged-in browser act, even when no token is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbers.http.asgi import send_json

PREFIX = "/ui"
COOKIE = "jobbers_session"
LOGIN = f"{PREFIX}/login"
#: The stylesheet and script: public, so that the login page is styled too.
STATIC = f"{PREFIX}/static/"


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"jobbers dashboard session", hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str:
    value: bytes = dict(scope["headers"]).get(name, b"")
    return value.decode("latin-1")


def has_session(scope: Scope, token: str) -> bool:
    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie"))
    except Exception:
        return False
    morsel = cookie.get(COOKIE)
    return morsel is not None and hmac.compare_digest(morsel.value, session_value(token))


def same_origin(scope: Scope) -> bool:
    """The request's Origin (or Referer) names the host it was sent to."""
    host = _header(scope, b"host")
    source = _header(scope, b"origin") or _header(scope, b"referer")
    if not host or not source or source == "null":
        return False
    return urlsplit(source).netloc == host


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class DashboardAuth:
    """Guards ``/ui``: a session cookie (or the bearer token) when a token is set, and the
    same-origin rule for every POST whether or not one is."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token

    def _authorized(self, scope: Scope) -> bool:
        if not self._token:
            return True
        bearer = _header(scope, b"authorization").encode("latin-1")
        expected = f"Bearer {self._token}".encode()
        return has_session(scope, self._token) or hmac.compare_digest(bearer, expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and not same_origin(scope):
            detail = "cross-site request refused: dashboard actions must come from its own pages"
            await send_json(send, 403, {"detail": detail}, [])
            return
        if path == LOGIN or path.startswith(STATIC) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            await _redirect(send, LOGIN)
            return
        await send_json(send, 401, {"detail": "log in to the dashboard first"}, [])
