"""The schedules page: every schedule with its next fire times, enabled or disabled with one
button. Registered on the dashboard's router beside the other pages."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from jobbers import scheduling
from jobbers.dashboard.forms import read_form
from jobbers.dashboard.pages import back, render, router
from jobbers.http.deps import CatalogDep, StoreDep


@router.get("/schedules")
async def schedules(request: Request, store: StoreDep) -> Response:
    rows = [scheduling.schedule_json(s) for s in await store.schedules()]
    return render(request, "schedules", schedules=rows)


@router.post("/schedules")
async def toggle_schedule(request: Request, store: StoreDep, catalog: CatalogDep) -> Response:
    form = await read_form(request)
    schedule_id = form.get("schedule")
    action = form.get("action")
    if action not in ("enable", "disable"):
        return back("/schedules", "choose enable or disable")
    try:
        await scheduling.update(store, catalog, schedule_id, {"enabled": action == "enable"})
    except scheduling.ScheduleNotFound:
        return back("/schedules", f"no schedule {schedule_id}")
    except scheduling.ScheduleRefused as exc:
        return back("/schedules", f"{schedule_id} cannot be enabled: {exc}")
    return back("/schedules", f"{schedule_id} {action}d")
