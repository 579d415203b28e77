"""Workflow runs: submit a graph (JSON or Mermaid text), list, read (also as Mermaid with each
node's status, which can be submitted again), cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from jobbers.api.errors import JSONResponse, error, responses
from jobbers.errors import InvalidWorkflow
from jobbers.http.deps import CatalogDep, StoreDep
from jobbers.models import Run, TaskRecord
from jobbers.store.base import BadCursor, DuplicateTaskConflict, Store
from jobbers.workflows import mermaid
from jobbers.workflows.runs import (
    RUN_STATUSES,
    RunStatus,
    node_statuses,
    run_json,
    run_status,
    stored_graph,
)
from jobbers.workflows.runs import submit as submit_run

router = APIRouter(tags=["workflows"])
RunIdPath = Annotated[str, Path(max_length=64)]
#: Runs looked at to fill one filtered page, so a rare status never scans everything.
SCAN = 1000


def _invalid(exc: InvalidWorkflow) -> JSONResponse:
    return error(422, exc.details())


@router.post("/workflows", status_code=201, responses=responses(409, 413, 422))
async def submit(request: Request, store: StoreDep, catalog: CatalogDep) -> JSONResponse:
    """The body is a graph ``{"name", "nodes": [...], "edges": [...]}`` or Mermaid text as
    ``{"mermaid": "flowchart TD ...", "name"?}``. The whole graph is checked first; a cycle,
    an unknown task or kwargs that do not fit answer 422 naming the node, storing nothing."""
    try:
        data: Any = json.loads(await request.body())
    except ValueError:
        return error(400, "the body is not JSON")
    try:
        if isinstance(data, dict) and "mermaid" in data:
            text, name = data.get("mermaid"), data.get("name", "mermaid")
            if not isinstance(text, str) or not isinstance(name, str) or not name:
                raise InvalidWorkflow(None, "'mermaid' is the diagram's text, 'name' a string")
            run, _ = await submit_run(store, catalog, None, graph=mermaid.parse(text, name))
        else:
            run, _ = await submit_run(store, catalog, data)
    except InvalidWorkflow as exc:
        return _invalid(exc)
    except DuplicateTaskConflict as exc:
        return error(409, str(exc))
    found = await store.run(run.id)
    assert found is not None
    return JSONResponse(run_json(*found), status_code=201)


async def _with_status(
    store: Store, runs: list[Run], status: RunStatus | None
) -> list[tuple[Run, list[TaskRecord]]]:
    out = []
    for run in runs:
        found = await store.run(run.id)
        if found is not None and (status is None or run_status(*found) == status):
            out.append(found)
    return out


@router.get("/workflows", responses=responses(422))
async def list_runs(
    store: StoreDep,
    status: Literal["running", "completed", "failed", "cancelled"] | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    """Newest first; ``cursor`` from the previous page. With ``status``, a page looks at up to
    a thousand runs to fill itself and says where to go on in ``cursor``."""
    assert status is None or status in RUN_STATUSES
    shown: list[tuple[Run, list[TaskRecord]]] = []
    looked = 0
    while True:
        try:
            page = await store.runs(limit - len(shown), cursor, name)
        except BadCursor as exc:
            return error(422, str(exc))
        looked += len(page.runs)
        shown += await _with_status(store, page.runs, status)
        cursor = page.cursor
        if cursor is None or len(shown) >= limit or looked >= SCAN:
            break
    body = {"runs": [run_json(r, t, full=False) for r, t in shown], "cursor": cursor}
    return JSONResponse(body)


@router.get("/workflows/{run_id}", responses=responses(404, 422))
async def get_run(
    run_id: RunIdPath,
    store: StoreDep,
    format: Literal["json", "mermaid"] = "json",
) -> Response:
    """The run with its nodes, edges and each node's status (and the tasks a fan-out added);
    ``format=mermaid``: the diagram with statuses, as text to submit again."""
    found = await store.run(run_id)
    if found is None:
        return error(404, f"no workflow run with id {run_id!r}")
    if format == "mermaid":
        run, tasks = found
        text = mermaid.render(stored_graph(run), node_statuses(run, tasks))
        return PlainTextResponse(text, media_type="text/vnd.mermaid")
    return JSONResponse(run_json(*found))


@router.post("/workflows/{run_id}/cancel", responses=responses(404, 413, 422))
async def cancel_run(run_id: RunIdPath, store: StoreDep) -> JSONResponse:
    """Cancels every task of the run that has not ended (running ones are stopped); nothing
    of the run starts afterwards."""
    result = await store.cancel_run(run_id, "workflow run cancelled")
    if result is None:
        return error(404, f"no workflow run with id {run_id!r}")
    found = await store.run(run_id)
    assert found is not None
    return JSONResponse(run_json(*found) | {"cancelled": result.cancelled})
