"""The dashboard's pages and actions. Each page renders its live part from one template, which
``?fragment=1`` returns alone: the page script fetches that every second and swaps it
in, so nothing reloads. Actions are plain form posts that redirect back (they work without the
script too)."""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
import time
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from jobbers.dashboard.chart import bars, svg
from jobbers.dashboard.forms import read_form
from jobbers.dashboard.session import COOKIE, PREFIX, session_value
from jobbers.http.deps import StoreDep
from jobbers.ids import ID_PATTERN
from jobbers.models import TERMINAL, QueueConfig, Status, TaskFilter
from jobbers.present import iso, queue_json, task_json, with_notes, worker_json
from jobbers.store.base import Store

router = APIRouter(prefix=PREFIX, include_in_schema=False)

templates = Environment(
    loader=PackageLoader("jobbers.dashboard", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)
templates.filters["when"] = lambda text: "-" if not text else text[:19].replace("T", " ")

STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
STATUSES = [s.value for s in Status]
PAGE = 50
HOUR, MINUTE = 3600.0, 60.0
Id = Annotated[str, Path(min_length=1, max_length=256)]


def _token(request: Request) -> str | None:
    token: str | None = getattr(request.app.state, "token", None)
    return token


def render(request: Request, name: str, **context: Any) -> HTMLResponse:
    """The whole page, or with ``?fragment=1`` only its live part (``live.html`` templates)."""
    fragment = request.query_params.get("fragment") == "1"
    template = templates.get_template(f"{name}_live.html" if fragment else f"{name}.html")
    html = template.render(
        prefix=PREFIX,
        page=name,
        logged_in=bool(_token(request)),
        notice=_notice(request),
        **context,
    )
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def _notice(request: Request) -> str:
    return request.query_params.get("notice", "")[:300]


def back(path: str, notice: str = "", **params: str) -> RedirectResponse:
    query = {k: v for k, v in {**params, "notice": notice}.items() if v}
    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"{PREFIX}{path}{suffix}", status_code=303)


# -- static files and the session ---------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    body = resources.files("jobbers.dashboard").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"cache-control": "no-cache"})


@router.get("/login")
async def login_form(request: Request) -> Response:
    if not _token(request):
        return back("")
    return render(request, "login", failed=request.query_params.get("failed") == "1")


@router.post("/login")
async def login(request: Request) -> Response:
    token = _token(request)
    if not token:
        return back("")
    given = (await read_form(request)).get("token")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return RedirectResponse(f"{PREFIX}/login?failed=1", status_code=303)
    response = back("")
    response.set_cookie(
        COOKIE,
        session_value(token),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


# -- overview -----------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, store: StoreDep) -> Response:
    now = time.time()
    since = now - now % MINUTE - HOUR + MINUTE
    counts = await store.counts(since=since, bucket=MINUTE)
    by_status = dict.fromkeys(STATUSES, 0)
    by_queue: dict[str, dict[str, int]] = {}
    for (queue, _, status), n in counts.tasks.items():
        by_status[status.value] += n
        row = by_queue.setdefault(queue, dict.fromkeys(STATUSES, 0))
        row[status.value] += n
    data = bars(counts.finished, since, MINUTE, int(HOUR / MINUTE))
    workers = await store.workers()
    return render(
        request,
        "overview",
        statuses=STATUSES,
        by_status=by_status,
        by_queue=sorted(by_queue.items()),
        chart=svg(data),
        completed_hour=sum(b.completed for b in data),
        failed_hour=sum(b.failed for b in data),
        workers=len(workers),
        slots_busy=sum(w.running for w in workers),
    )


# -- tasks --------------------------------------------------------------------------------------


def _filter(status: str | None, queue: str | None, name: str | None) -> TaskFilter:
    return TaskFilter(
        status=Status(status) if status in STATUSES else None,
        queue=queue or None,
        name=name or None,
    )


async def _page(store: Store, filters: TaskFilter, cursor: str | None) -> tuple[list[Any], Any]:
    try:
        page = await store.query(filters, PAGE, cursor or None)
    except (ValueError, OverflowError):
        page = await store.query(filters, PAGE, None)
    return [task_json(t) for t in page.tasks], page.cursor


@router.get("/tasks")
async def tasks(
    request: Request,
    store: StoreDep,
    status: str | None = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    id: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    if id:
        if id.strip() in await store.statuses([id.strip()]):
            return RedirectResponse(f"{PREFIX}/tasks/{id.strip()}", status_code=303)
        return back("/tasks", f"no task with id {id.strip()}")
    rows, next_cursor = await _page(store, _filter(status, queue, name), cursor)
    filters = {"status": status or "", "queue": queue or "", "name": name or ""}
    return render(
        request,
        "tasks",
        tasks=rows,
        cursor=next_cursor,
        filters=filters,
        statuses=STATUSES,
        more=urlencode({**filters, "cursor": next_cursor or ""}),
    )


@router.get("/tasks/{task_id}")
async def task_detail(request: Request, store: StoreDep, task_id: Id) -> Response:
    found = await store.get([task_id])
    if task_id not in found:
        return back("/tasks", f"no task with id {task_id}")
    record = found[task_id]
    body = with_notes(task_json(record), await store.notes(task_id))
    return render(
        request,
        "task",
        task=body,
        cancellable=record.status not in TERMINAL,
        resubmittable=record.status == Status.DEAD,
    )


@router.post("/tasks/{task_id}/cancel")
async def cancel(store: StoreDep, task_id: Id) -> Response:
    result = await store.cancel([task_id], reason="cancelled from the dashboard")
    notice = "cancelled" if result.cancelled else "not cancellable: already finished"
    return back(f"/tasks/{task_id}", notice)


@router.post("/tasks/{task_id}/resubmit")
async def resubmit_one(store: StoreDep, task_id: Id) -> Response:
    moved = await store.resubmit([task_id])
    return back(f"/tasks/{task_id}", "resubmitted" if moved else "only dead tasks are resubmitted")


# -- dead letter --------------------------------------------------------------------------------


@router.get("/dead-letter")
async def dead_letter(
    request: Request,
    store: StoreDep,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    filters = {"queue": queue or "", "name": name or ""}
    rows, next_cursor = await _page(store, _filter(Status.DEAD, queue, name), cursor)
    return render(
        request,
        "dead",
        tasks=rows,
        cursor=next_cursor,
        filters=filters,
        more=urlencode({**filters, "cursor": next_cursor or ""}),
    )


async def _dead_selection(store: Store, request: Request) -> tuple[list[str], dict[str, str]]:
    form = await read_form(request)
    filters = {"queue": form.get("queue"), "name": form.get("name")}
    if form.get("all") != "1":
        return list(dict.fromkeys(form.all("ids")))[:10_000], filters
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < 10_000:
        page = await store.query(
            _filter(Status.DEAD, filters["queue"], filters["name"]), 1000, cursor
        )
        ids.extend(t.id for t in page.tasks)
        cursor = page.cursor
        if cursor is None:
            break
    return ids, filters


@router.post("/dead-letter/resubmit")
async def dead_resubmit(request: Request, store: StoreDep) -> Response:
    ids, filters = await _dead_selection(store, request)
    moved = await store.resubmit(ids) if ids else []
    return back("/dead-letter", f"resubmitted {len(moved)} task(s)", **filters)


@router.post("/dead-letter/delete")
async def dead_delete(request: Request, store: StoreDep) -> Response:
    ids, filters = await _dead_selection(store, request)
    gone = await store.delete(ids, [Status.DEAD]) if ids else []
    return back("/dead-letter", f"deleted {len(gone)} task(s)", **filters)


# -- queues and workers -------------------------------------------------------------------------


@router.get("/queues")
async def queues(request: Request, store: StoreDep) -> Response:
    counts = await store.counts(since=time.time())
    now = time.time()
    stats = {s.config.name: s for s in await store.queue_stats()}
    # Queues that only hold finished tasks are listed too, so they can be paused or limited.
    names = sorted(stats.keys() | {queue for queue, _, _ in counts.tasks})
    rows = []
    for name in names:
        found = stats.get(name)
        row = queue_json(found.config if found else QueueConfig(name=name), found)
        oldest = counts.oldest_ready.get(name)
        row["oldest_wait"] = None if oldest is None else max(0.0, now - oldest)
        rows.append(row)
    editing = request.query_params.get("edit", "")
    current = next(
        (r for r in rows if r["name"] == editing),
        {"name": editing, "concurrency": None, "rate_limit": None, "rate_period": 1.0},
    )
    return render(request, "queues", queues=rows, editing=current)


def _limit(text: str, cast: type[int] | type[float]) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    value = cast(text)
    if value <= 0:
        raise ValueError("limits must be positive")
    return value


@router.post("/queues")
async def update_queue(request: Request, store: StoreDep) -> Response:
    form = await read_form(request)
    name = form.get("queue").strip()
    if not re.fullmatch(ID_PATTERN, name):
        return back("/queues", "a queue name is 1-128 of A-Z a-z 0-9 _ . : -")
    current = next((s.config for s in await store.queue_stats() if s.config.name == name), None)
    config = current or QueueConfig(name=name)
    action = form.get("action")
    if action in ("pause", "resume"):
        config = dataclasses.replace(config, paused=action == "pause")
        notice = f"{name} {'paused' if config.paused else 'resumed'}"
    else:
        try:
            config = dataclasses.replace(
                config,
                concurrency=_limit(form.get("concurrency"), int),  # type: ignore[arg-type]
                rate_limit=_limit(form.get("rate_limit"), int),  # type: ignore[arg-type]
                rate_period=_limit(form.get("rate_period"), float) or 1.0,
            )
        except ValueError:
            return back("/queues", "limits must be positive whole numbers (empty: no limit)")
        notice = f"{name} limits saved"
    await store.set_queue(config)
    return back("/queues", notice)


@router.get("/workers")
async def workers(request: Request, store: StoreDep) -> Response:
    now = time.time()
    running = await store.query(TaskFilter(status=Status.STARTED), 1000)
    by_worker: dict[str, list[str]] = {}
    for task in running.tasks:
        by_worker.setdefault(task.worker or "", []).append(task.id)
    rows = []
    for info in await store.workers():
        row = worker_json(info)
        row["seen_ago"] = max(0.0, now - info.last_seen)
        row["started"] = iso(info.started_at)
        row["tasks"] = by_worker.get(info.id, [])
        rows.append(row)
    return render(request, "workers", workers=rows)
