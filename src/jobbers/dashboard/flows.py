"""The dashboard's workflow pages: the runs, newest first, and one run as a graph with each
node's status, with a cancel button. Registered on the dashboard's router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from jobbers.dashboard.graph import svg
from jobbers.dashboard.pages import Id, back, render, router
from jobbers.http.deps import StoreDep
from jobbers.workflows.runs import run_json


@router.get("/workflows")
async def workflows(
    request: Request,
    store: StoreDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    page = await store.runs(50, cursor)
    rows = []
    for run in page.runs:
        found = await store.run(run.id)
        if found is not None:
            rows.append(run_json(*found, full=False))
    more = f"cursor={page.cursor}" if page.cursor else ""
    return render(request, "workflows", runs=rows, cursor=page.cursor, more=more)


@router.get("/workflows/{run_id}")
async def workflow(request: Request, store: StoreDep, run_id: Id) -> Response:
    found = await store.run(run_id)
    if found is None:
        return back("/workflows", f"no workflow run with id {run_id}")
    run = run_json(*found)
    return render(request, "workflow", run=run, graph=svg(run["nodes"], run["edges"]))


@router.post("/workflows/{run_id}/cancel")
async def cancel(store: StoreDep, run_id: Id) -> Response:
    result = await store.cancel_run(run_id, "workflow run cancelled from the dashboard")
    if result is None:
        return back("/workflows", f"no workflow run with id {run_id}")
    return back(f"/workflows/{run_id}", f"cancelled {len(result.cancelled)} task(s)")
