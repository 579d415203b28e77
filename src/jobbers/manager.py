"""The Manager: the HTTP API and the dashboard over one store, assembled in one place.

Stateless, so any number can serve one store. The API and the dashboard never import each other;
this module puts them in one app, behind the token checks and body limits both answer to, with
submissions answered in front of the middleware stack by the API's fast path.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from jobbers import dashboard
from jobbers.api import FastSubmit, create_api
from jobbers.http.auth import BearerAuth
from jobbers.http.limits import (
    BULK_PATHS,
    MAX_BODY_BYTES,
    MAX_BULK_BODY_BYTES,
    BodyLimit,
    BodyLimits,
)
from jobbers.http.requests import RequestMetrics, measured
from jobbers.store.base import Store


class ManagerApp(FastAPI):
    """The FastAPI app, with submissions answered in front of its middleware stack."""

    fast_submit: FastSubmit | None = None
    requests: RequestMetrics | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_submit
        requests = self.requests
        if requests is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
        elif fast is not None and fast.takes(scope):
            await measured(requests, scope, receive, send, fast, scope["path"])
        else:
            await measured(requests, scope, receive, send, super().__call__)


def create_app(
    store: Store,
    token: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_bulk_body: int = MAX_BULK_BODY_BYTES,
) -> ManagerApp:
    """The caller owns the store: it opens it before and closes it after serving."""
    app = create_api(store, ManagerApp)
    app.state.token = token
    app.include_router(dashboard.router)
    limits = BodyLimits(max_body, dict.fromkeys(BULK_PATHS, max_bulk_body))
    app.add_middleware(BodyLimit, limits=limits)
    app.add_middleware(dashboard.DashboardAuth, token=token)
    if token:
        app.add_middleware(BearerAuth, token=token, open_prefixes=dashboard.SESSION_PATHS)
    app.requests = app.state.requests = RequestMetrics()
    full_stack = partial(FastAPI.__call__, app)
    app.fast_submit = FastSubmit(full_stack, app.state, token, limits)
    return app
