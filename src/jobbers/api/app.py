"""The Manager's HTTP API: routes, error answers and the state they share, installed on an app
that :mod:`jobbers.manager` assembles with the dashboard."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Depends, FastAPI, Request

from jobbers.api import errors
from jobbers.api.batching import SubmitBatcher
from jobbers.api.query import known_query_only
from jobbers.api.routes import (
    dead_letter,
    docs,
    events,
    health,
    metrics,
    queues,
    schedules,
    tasks,
    workflows,
)
from jobbers.catalog import TaskCatalog
from jobbers.intake import Catalog
from jobbers.store.base import Store
from jobbers.waiting import TaskWaiters

App = TypeVar("App", bound=FastAPI)


async def _fresh_definitions(request: Request) -> None:
    """Routes that show kwargs must know the secret names workers registered lately."""
    catalog: Catalog = request.app.state.catalog
    await catalog.refresh_if_stale()


def create_api(store: Store, app_class: type[App]) -> App:
    """An app of ``app_class`` serving the API over ``store``, which the caller owns: it opens it
    before and closes it after serving."""
    app = app_class(
        title="Jobbers Manager",
        version="0.1.0",
        description="Submit, track and act on Jobbers tasks.",
        default_response_class=errors.JSONResponse,
        dependencies=[Depends(known_query_only)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.catalog = TaskCatalog(store)
    app.state.waiters = TaskWaiters(store)
    app.state.batcher = SubmitBatcher(store)
    errors.install(app)
    for module in (health, events, queues, metrics, docs):
        app.include_router(module.router)
    for module in (tasks, dead_letter, workflows, schedules):
        app.include_router(module.router, dependencies=[Depends(_fresh_definitions)])
    return app
