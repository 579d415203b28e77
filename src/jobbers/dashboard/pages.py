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

from jobbers.dashboard import insight, tasklist
from jobbers.dashboard.chart import DEFAULT_RANGE, RANGES, SERIES, bars, hbars, percentile, svg
from jobbers.dashboard.chart import window as chart_window
from jobbers.dashboard.forms import read_form
from jobbers.dashboard.rerun import RerunRefused, rerun, rerun_of, reruns
from jobbers.dashboard.session import COOKIE, LOGIN, PREFIX, has_session, session_value
from jobbers.http.deps import StoreDep
from jobbers.ids import ID_PATTERN
from jobbers.models import TERMINAL, QueueConfig, Status, TaskFilter
from jobbers.present import iso, queue_json, task_json, with_notes, worker_json
from jobbers.store.base import DuplicateTaskConflict, Store

router = APIRouter(prefix=PREFIX, include_in_schema=False)

templates = Environment(
    loader=PackageLoader("jobbers.dashboard", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)
templates.filters["when"] = lambda text: "-" if not text else text[:19].replace("T", " ")
templates.filters["secs"] = lambda v: "-" if v is None else _secs(v)
templates.filters["pct"] = lambda v: f"{v * 100:.0f}%"


def _secs(value: float) -> str:
    if value == float("inf"):
        return "> 1 h"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    if value < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


STATIC = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
STATUSES = [s.value for s in Status]
PAGE = 50
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
        logged_in=_logged_in(request),
        notice=_notice(request),
        **context,
    )
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def _logged_in(request: Request) -> bool:
    """A session to end: not before login, and not for a caller that sent the bearer token."""
    token = _token(request)
    return bool(token) and has_session(request.scope, token or "")


def _next(text: str) -> str:
    """Where to go after login: a dashboard page of this site, never another site."""
    if text == PREFIX or (text.startswith(PREFIX + "/") and not text.startswith(LOGIN)):
        return text if "//" not in text and "\\" not in text else PREFIX
    return PREFIX


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
    return render(
        request,
        "login",
        failed=request.query_params.get("failed") == "1",
        next=_next(request.query_params.get("next", "")),
    )


@router.post("/login")
async def login(request: Request) -> Response:
    token = _token(request)
    if not token:
        return back("")
    form = await read_form(request)
    given, target = form.get("token"), _next(form.get("next"))
    if not hmac.compare_digest(given.encode(), token.encode()):
        query = urlencode({"failed": "1", "next": target})
        return RedirectResponse(f"{LOGIN}?{query}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_value(token),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- overview -----------------------------------------------------------------------------------


@router.get("")
async def overview(
    request: Request, store: StoreDep, range: Annotated[str, Query(max_length=8)] = DEFAULT_RANGE
) -> Response:
    chosen = RANGES.get(range, RANGES[DEFAULT_RANGE])
    now = time.time()
    since = chart_window(now, chosen)
    counts = await store.counts(since=since, bucket=chosen.bucket)
    by_status = dict.fromkeys(STATUSES, 0)
    by_queue: dict[str, dict[str, int]] = {}
    for (queue, _, status), n in counts.tasks.items():
        by_status[status.value] += n
        row = by_queue.setdefault(queue, dict.fromkeys(STATUSES, 0))
        row[status.value] += n
    data = bars(counts.finished, since, chosen.bucket, chosen.buckets)
    workers = await store.workers()
    stats = await store.queue_stats()
    queues = sorted(stats, key=lambda q: q.config.name)
    percentiles: list[dict[str, Any]] = []
    wait95: list[tuple[str, float]] = []
    run95: list[tuple[str, float]] = []
    for queue in sorted(counts.wait.keys() | counts.run.keys()):
        wait, run = counts.wait.get(queue), counts.run.get(queue)
        waits = [percentile(wait, q) if wait else None for q in (0.5, 0.95, 0.99)]
        runs = [percentile(run, q) if run else None for q in (0.5, 0.95, 0.99)]
        percentiles.append({"queue": queue, "wait": waits, "run": runs})
        if waits[1] is not None:
            wait95.append((queue, waits[1]))
        if runs[1] is not None:
            run95.append((queue, runs[1]))
    return render(
        request,
        "overview",
        statuses=STATUSES,
        by_status=by_status,
        by_queue=sorted(by_queue.items()),
        ranges=RANGES.values(),
        range=chosen,
        chart=svg(data, chosen),
        in_range={s.value: sum(b.counts[s] for b in data) for s in SERIES},
        depth_chart=hbars(
            [(q.config.name, float(q.depth)) for q in queues], "ready", "ready tasks per queue"
        ),
        percentiles=percentiles,
        wait_chart=hbars(wait95, "s", "p95 queue wait per queue"),
        run_chart=hbars(run95, "s", "p95 run time per queue"),
        names=await insight.by_name(store, since, now),
        warnings=insight.warnings(stats, workers, now),
        workers=len(insight.live(workers, now)),
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


Short = Annotated[str, Query(max_length=256)]


@router.get("/tasks")
async def tasks(
    request: Request,
    store: StoreDep,
    status: Short = "",
    queue: Short = "",
    name: Short = "",
    worker: Short = "",
    since: Short = "",
    sort: Short = "",
    order: Short = "desc",
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    id: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    if id:
        if id.strip() in await store.statuses([id.strip()]):
            return RedirectResponse(f"{PREFIX}/tasks/{id.strip()}", status_code=303)
        return back("/tasks", f"no task with id {id.strip()}")
    query = tasklist.Query(status, queue, name, worker, since, sort, order)
    rows, next_cursor = await tasklist.rows(store, query, cursor)
    filters = query.params()
    return render(
        request,
        "tasks",
        tasks=rows,
        cursor=next_cursor,
        filters=filters,
        statuses=STATUSES,
        since_options=list(tasklist.SINCE),
        scanned=tasklist.SCAN if query.scans else None,
        more=urlencode({**filters, "cursor": next_cursor or ""}),
        sort_links={
            key: urlencode(
                {
                    **filters,
                    "sort": key,
                    "order": "asc" if filters["sort"] == key and order == "desc" else "desc",
                }
            )
            for key in tasklist.SORTS
        },
    )


@router.post("/tasks/cancel")
async def cancel_many(request: Request, store: StoreDep) -> Response:
    form = await read_form(request)
    field = {k: form.get(k)[:256] for k in ("status", "queue", "name", "worker", "since")}
    query = tasklist.Query(**field)
    if form.get("all") == "1":
        ids = await tasklist.cancellable_ids(store, query)
    else:
        ids = list(dict.fromkeys(form.all("ids")))[:10_000]
    result = await store.cancel(ids, reason="cancelled from the dashboard") if ids else None
    done = len(result.cancelled) if result else 0
    skipped = len(result.not_cancellable) if result else 0
    notice = f"cancelled {done} task(s)" + (f", {skipped} already finished" if skipped else "")
    params = {k: v for k, v in query.params().items() if v and k != "order"}
    return back("/tasks", notice, **params)


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
        rerunnable=record.status in TERMINAL,
        rerun_of=rerun_of(task_id),
        reruns=await reruns(store, task_id),
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


@router.post("/tasks/{task_id}/rerun")
async def rerun_one(store: StoreDep, task_id: Id) -> Response:
    found = await store.get([task_id])
    if task_id not in found:
        return back("/tasks", f"no task with id {task_id}")
    try:
        new_id = await rerun(store, found[task_id])
    except RerunRefused as exc:
        return back(f"/tasks/{task_id}", str(exc))
    except DuplicateTaskConflict:
        return back(f"/tasks/{task_id}", "the re-run's id is taken by another task")
    return back(f"/tasks/{new_id}", f"re-run of {task_id} submitted")


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
    listed = await store.queue_stats()
    stats = {s.config.name: s for s in listed}
    workers = await store.workers()
    # Queues that only hold finished tasks, or only have workers so far, are listed too, so
    # they can be paused or limited ahead of their next task.
    names = insight.queue_names(listed, workers, {queue for queue, _, _ in counts.tasks})
    alive = insight.live(workers, now)
    rows = []
    for name in names:
        found = stats.get(name)
        row = queue_json(found.config if found else QueueConfig(name=name), found)
        oldest = counts.oldest_ready.get(name)
        row["oldest_wait"] = None if oldest is None else max(0.0, now - oldest)
        row["workers"] = sum(1 for w in alive if name in w.queues)
        rows.append(row)
    editing = request.query_params.get("edit", "")
    current = next(
        (r for r in rows if r["name"] == editing),
        {"name": editing, "concurrency": None, "rate_limit": None, "rate_period": 1.0},
    )
    return render(
        request,
        "queues",
        queues=rows,
        editing=current,
        warnings=insight.warnings(listed, workers, now),
    )


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
        row["pid"] = insight.pid(info.id)
        rows.append(row)
    return render(request, "workers", workers=rows, silent=insight.SILENT)


@router.get("/workers/{worker_id}")
async def worker_detail(request: Request, store: StoreDep, worker_id: Id) -> Response:
    now = time.time()
    found = await insight.worker_page(store, worker_id, now)
    if found is None:
        return back("/workers", f"no worker {worker_id} is registered or ran a kept task")
    info = found["info"]
    return render(
        request,
        "worker",
        worker=found,
        facts=worker_json(info) if info else None,
        running=[task_json(t) for t in found["running"]],
        latest=[task_json(t) for t in found["latest"]],
    )
