"""Who may use the dashboard, and from where.

The session cookie (path ``/``, so that ``/docs`` and ``/openapi.json`` see it too; nothing
else outside ``/ui`` accepts it) holds an HMAC of the API token, not the token: every Manager
that shares the token accepts it without server-side state, and changing the token ends every
session. The cookie is HttpOnly (no script reads it) and SameSite=Strict (no other site's page
sends it). On top of that every POST must carry an ``Origin`` (or, failing that, ``Referer``)
of the dashboard's own host, so a page elsewhere cannot make a logged-in browser act, even when
no token is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from jobbers.http.asgi import send_json
from jobbers.http.auth import bearer_matches

PREFIX = "/ui"
COOKIE = "jobbers_session"
LOGIN = f"{PREFIX}/login"
#: The stylesheet and script: public, so that the login page is styled too.
STATIC = f"{PREFIX}/static/"
#: Outside the dashboard, the API's documentation also opens to a dashboard session (read-only
#: GETs), so an operator logged in can read it in the same browser without pasting the token.
DOCS_PATHS = ("/docs", "/openapi.json")
#: Every path this middleware guards; the bearer-token middleware leaves them to it.
SESSION_PATHS = (PREFIX, *DOCS_PATHS)


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


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


class DashboardAuth:
    """Guards ``/ui``: a session cookie (or the bearer token) when a token is set, and the
    same-origin rule for every POST whether or not one is."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token

    def _authorized(self, scope: Scope) -> bool:
        if not self._token:
            return True
        return has_session(scope, self._token) or bearer_matches(scope, self._token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not _under(path, (PREFIX,)):
            if scope["type"] == "http" and _under(path, DOCS_PATHS):
                await self._docs(scope, receive, send)
                return
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
            asked = path + (
                "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
            )
            await _redirect(send, f"{LOGIN}?{urlencode({'next': asked})}")
            return
        await send_json(send, 401, {"detail": "log in to the dashboard first"}, [])

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._authorized(scope):
            await self.app(scope, receive, send)
            return
        detail = (
            "missing or wrong API token: send the header 'Authorization: Bearer <token>',"
            f" or log in at {LOGIN} in this browser"
        )
        await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
