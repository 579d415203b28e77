"""Creating, changing and showing schedules: once for the API's routes and the dashboard's pages.

Everything about a schedule is checked before it is stored: the cron expression, the time zone,
that the expression ever fires, and the target as a submission would be (the task is known, its
kwargs fit). A refusal is :class:`ScheduleRefused` with the API's 422 details.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError

from jobbers.cron import CronError
from jobbers.errors import InvalidKwargs, UnknownTask
from jobbers.firing import check_target
from jobbers.ids import ID_PATTERN, uuid7
from jobbers.intake import Catalog
from jobbers.intake.submission import MAX_SECONDS, Strict
from jobbers.present import iso, validation_details
from jobbers.redact import redact, secret_keys
from jobbers.schedule import Concurrency, Misfire, Schedule, check_timing
from jobbers.store.base import Store

#: Upcoming fire times shown with each schedule.
UPCOMING = 5
#: Schedule ids leave room in a task id for the occurrence's time.
MAX_SCHEDULE_ID = 80

ScheduleId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=MAX_SCHEDULE_ID)]
Grace = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
CronText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ScheduleIn(Strict):
    """A new schedule (``POST /schedules``)."""

    id: ScheduleId | None = Field(default=None, description="Chosen by the Manager if absent.")
    cron: CronText = Field(description="5 fields, or 6 with seconds first.")
    timezone: ZoneName = Field(default="UTC", description="IANA name: Europe/Paris, UTC ...")
    target: dict[str, Any] = Field(
        description='{"task": name, "kwargs": {...}, "queue": ..., "priority": ...}'
    )
    enabled: bool = True
    misfire: Misfire = Field(default="skip", description="skip, or run_once after downtime.")
    misfire_grace: Grace = 60.0
    concurrency: Concurrency = Field(
        default="always", description="always, or skip while the previous run is unfinished."
    )


class ScheduleUpdate(Strict):
    """Changes to a schedule (``PUT /schedules/{id}``): the fields given replace the stored ones."""

    cron: CronText | None = None
    timezone: ZoneName | None = None
    target: dict[str, Any] | None = None
    enabled: bool | None = None
    misfire: Misfire | None = None
    misfire_grace: Grace | None = None
    concurrency: Concurrency | None = None


class ScheduleRefused(ValueError):
    """A schedule that cannot be stored; ``details`` in the API's 422 shape."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(d["msg"] for d in details))
        self.details = details


class ScheduleNotFound(LookupError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule {schedule_id!r}")


class ScheduleExists(ValueError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"a schedule {schedule_id!r} exists already")


def _refused(field: str, message: str, kind: str) -> ScheduleRefused:
    return ScheduleRefused([{"loc": ["body", field], "msg": message, "type": kind}])


async def _checked(schedule: Schedule, catalog: Catalog, now: float) -> Schedule:
    """The schedule armed from ``now``, or :class:`ScheduleRefused`."""
    try:
        check_timing(schedule.cron, schedule.timezone, now)
    except CronError as exc:
        field = "timezone" if "time zone" in str(exc) else "cron"
        raise _refused(field, str(exc), "cron") from None
    try:
        await check_target(schedule.target, catalog)
    except ValidationError as exc:
        raise ScheduleRefused(validation_details(exc.errors(), ("body", "target"))) from None
    except InvalidKwargs as exc:
        details = [{**d, "loc": ["body", "target", *d["loc"][1:]]} for d in exc.details()]
        raise ScheduleRefused(details) from None
    except UnknownTask as exc:
        raise _refused("target", str(exc), "unknown_task") from None
    except (ValueError, KeyError) as exc:
        raise _refused("target", str(exc), "target") from None
    return schedule.armed(now)


async def create(store: Store, catalog: Catalog, body: ScheduleIn) -> Schedule:
    now = time.time()
    fields = body.model_dump(exclude={"id"})
    schedule = Schedule(id=body.id or uuid7(), created_at=now, updated_at=now, **fields)
    armed = await _checked(schedule, catalog, now)
    if not await store.save_schedule(armed, create=True):
        raise ScheduleExists(armed.id)
    return armed


async def update(
    store: Store, catalog: Catalog, schedule_id: str, changes: dict[str, Any]
) -> Schedule:
    """The schedule with ``changes``; ``next_fire`` starts again from now (an update does not
    catch up on what it would have fired before)."""
    current = await store.get_schedule(schedule_id)
    if current is None:
        raise ScheduleNotFound(schedule_id)
    now = time.time()
    changed = dataclasses.replace(current, **changes, updated_at=now)
    armed = await _checked(changed, catalog, now)
    if not await store.save_schedule(armed, create=False):
        raise ScheduleNotFound(schedule_id)
    return (await store.get_schedule(schedule_id)) or armed


async def delete(store: Store, schedule_id: str) -> None:
    if not await store.delete_schedule(schedule_id):
        raise ScheduleNotFound(schedule_id)


async def get(store: Store, schedule_id: str) -> Schedule:
    found = await store.get_schedule(schedule_id)
    if found is None:
        raise ScheduleNotFound(schedule_id)
    return found


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API shows it: times in ISO 8601, secret kwargs masked, and the next
    fire times."""
    target = dict(schedule.target)
    if isinstance(target.get("kwargs"), dict) and isinstance(target.get("task"), str):
        target["kwargs"] = redact(target["kwargs"], secret_keys(target["task"]))
    upcoming = []
    if schedule.next_fire is not None:  # from the next one, even when it is overdue
        upcoming = schedule.upcoming(UPCOMING, schedule.next_fire - 0.001)
    return {
        "id": schedule.id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "target": target,
        "enabled": schedule.enabled,
        "misfire": schedule.misfire,
        "misfire_grace": schedule.misfire_grace,
        "concurrency": schedule.concurrency,
        "next_fire": iso(schedule.next_fire),
        "next_fires": [iso(t) for t in upcoming],
        "last_fire": iso(schedule.last_fire),
        "last_tasks": list(schedule.last_tasks),
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
    }
