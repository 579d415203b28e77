"""The Manager: a FastAPI app over a store. Stateless, so any number can serve one store."""

from __future__ import annotations

from functools import partial

from fastapi import Depends, FastAPI, Request
from starlette.types import Receive, Scope, Send

from jobbers.api import errors
from jobbers.api.auth import BearerAuth
from jobbers.api.batching import SubmitBatcher
from jobbers.api.fast_submit import FastSubmit
from jobbers.api.limits import (
    BULK_PATHS,
    MAX_BODY_BYTES,
    MAX_BULK_BODY_BYTES,
    BodyLimit,
    BodyLimits,
)
from jobbers.api.query import known_query_only
from jobbers.api.routes import dead_letter, events, health, metrics, queues, tasks
from jobbers.api.submissions import TaskCatalog
from jobbers.dashboard import PREFIX as DASHBOARD
from jobbers.dashboard import DashboardAuth
from jobbers.dashboard import router as dashboard
from jobbers.store.base import Store
from jobbers.waiting import TaskWaiters


async def _fresh_definitions(request: Request) -> None:
    """Routes that show kwargs must know the secret names workers registered lately."""
    catalog: TaskCatalog = request.app.state.catalog
    await catalog.refresh_if_stale()


class ManagerApp(FastAPI):
    """The FastAPI app, with submissions answered in front of its middleware stack."""

    fast_submit: FastSubmit | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_submit
        if fast is not None and fast.takes(scope):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    store: Store,
    token: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_bulk_body: int = MAX_BULK_BODY_BYTES,
) -> ManagerApp:
    """The caller owns the store: it opens it before and closes it after serving."""
    app = ManagerApp(
        title="Jobbers Manager",
        version="0.1.0",
        description="Submit, track and act on Jobbers tasks.",
        default_response_class=errors.JSONResponse,
        dependencies=[Depends(known_query_only)],
    )
    app.state.store = store
    app.state.catalog = TaskCatalog(store)
    app.state.token = token
    app.state.waiters = TaskWaiters(store)
    app.state.batcher = SubmitBatcher(store)
    errors.install(app)
    for module in (health, events, queues, metrics):
        app.include_router(module.router)
    for module in (tasks, dead_letter):
        app.include_router(module.router, dependencies=[Depends(_fresh_definitions)])
    app.include_router(dashboard)
    limits = BodyLimits(max_body, dict.fromkeys(BULK_PATHS, max_bulk_body))
    app.add_middleware(BodyLimit, limits=limits)
    app.add_middleware(DashboardAuth, token=token)
    if token:
        app.add_middleware(BearerAuth, token=token, open_prefix=DASHBOARD)
    full_stack = partial(FastAPI.__call__, app)
    app.fast_submit = FastSubmit(full_stack, app.state, token, limits)
    return app
