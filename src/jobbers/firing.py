"""Firing schedules: whoever runs this (every worker does) submits each due occurrence, and with
any number of firers each occurrence is submitted once.

Two steps make that hold without a lock. An occurrence's submission has an id made from the
schedule and the occurrence's time, so firers that both see it due submit the same task, and the
store keeps one (a second submission of an id with its payload is answered, not stored again).
Then the firer moves ``next_fire`` on with a compare-and-set from the value it read: one firer
wins, the others see a changed value and read again. A firer that dies between the two steps
leaves the occurrence due, and the next firer submits the same id, which the store already holds.

Late occurrences: one later than the schedule's ``misfire_grace`` (the firers were down) is a
misfire; ``skip`` drops every missed occurrence, ``run_once`` submits one run for all of them.
Either way the schedule resumes with the first occurrence within the grace.

Target kinds: each kind in :data:`TARGETS` says how to check a target, submit it and tell
whether what it submitted is still running. A kind is added by adding its entry here and its
name to :data:`jobbers.schedule.TARGET_KINDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobbers.errors import InvalidKwargs, UnknownTask
from jobbers.intake import Catalog, TaskSubmission, build_tasks, store_writer, submit_one
from jobbers.models import TERMINAL
from jobbers.schedule import TARGET_KINDS, Schedule, target_kind
from jobbers.store.base import DuplicateTaskConflict, Store, StoreUnavailable
from jobbers.workflows import runs as workflow_runs
from jobbers.workflows.graph import parse as parse_graph

log = logging.getLogger("jobbers.schedules")

#: Submission fields a task target may set besides ``task`` (its name).
TASK_TARGET_FIELDS = frozenset({"kwargs", "queue", "priority", "max_retries", "timeout"})


def task_submission(target: dict[str, Any], task_id: str | None = None) -> TaskSubmission:
    """A task target as a submission; ``ValueError`` (pydantic's) for a bad one."""
    extra = set(target) - TASK_TARGET_FIELDS - {"task"}
    if extra:
        raise ValueError(f"a task target does not take {', '.join(sorted(extra))}")
    fields = {k: v for k, v in target.items() if k in TASK_TARGET_FIELDS}
    return TaskSubmission.model_validate({"name": target["task"], "id": task_id, **fields})


async def _check_task(target: dict[str, Any], catalog: Catalog) -> None:
    await build_tasks([task_submission(target)], catalog)


async def _submit_task(
    store: Store, catalog: Catalog, target: dict[str, Any], run_id: str
) -> list[str]:
    sub = task_submission(target, run_id)
    try:
        done = await submit_one(sub, catalog, store_writer(store))
    except DuplicateTaskConflict:
        # Another firer submitted this occurrence before the target changed: it is submitted.
        return [run_id]
    return [done.task.id]


async def _tasks_running(store: Store, ids: Sequence[str]) -> bool:
    found = await store.statuses(ids)
    return any(status not in TERMINAL for status in found.values())


async def _check_workflow(target: dict[str, Any], catalog: Catalog) -> None:
    await workflow_runs.check(parse_graph(target["workflow"]), catalog)


async def _submit_workflow(
    store: Store, catalog: Catalog, target: dict[str, Any], run_id: str
) -> list[str]:
    with contextlib.suppress(DuplicateTaskConflict):  # another firer stored it first
        await workflow_runs.submit(store, catalog, target["workflow"], run_id=run_id)
    return [run_id]


async def _workflows_running(store: Store, run_ids: Sequence[str]) -> bool:
    """Judged on the whole run: a run whose root finished while its children (or a fan-out's)
    have not is still running."""
    for run_id in run_ids:
        found = await store.run(run_id)
        if found is not None and workflow_runs.run_status(*found) == "running":
            return True
    return False


@dataclass(frozen=True)
class TargetKind:
    #: Raises (``ValueError``, ``UnknownTask``, ``InvalidKwargs``) for a target it cannot submit.
    check: Callable[[dict[str, Any], Catalog], Awaitable[None]]
    #: Submits one occurrence under the id given (idempotent); returns what it submitted.
    submit: Callable[[Store, Catalog, dict[str, Any], str], Awaitable[list[str]]]
    #: Whether what an occurrence submitted is unfinished (``concurrency="skip"`` asks).
    running: Callable[[Store, Sequence[str]], Awaitable[bool]]


TARGETS: dict[str, TargetKind] = {
    "task": TargetKind(_check_task, _submit_task, _tasks_running),
    "workflow": TargetKind(_check_workflow, _submit_workflow, _workflows_running),
}
assert set(TARGETS) == set(TARGET_KINDS), "every target kind needs its entry in TARGETS"


async def check_target(target: dict[str, Any], catalog: Catalog) -> None:
    """Everything wrong with a target, raised before a schedule holding it is stored."""
    await TARGETS[target_kind(target)].check(target, catalog)


def occurrence_id(schedule: Schedule, at: float) -> str:
    """The id an occurrence's submission gets: the same for every firer."""
    return f"sched:{schedule.id}:{round(at * 1000)}"


@dataclass(frozen=True)
class Fired:
    """What one firer did with one occurrence (for logs and tests)."""

    schedule: str
    at: float
    action: str  # "fired", "caught_up", "skipped_running", "skipped_misfire", "lost"
    tasks: tuple[str, ...] = ()


class Firer:
    """Fires due schedules from one process; run any number of them against one store."""

    def __init__(self, store: Store, catalog: Catalog, *, interval: float = 0.5) -> None:
        self._store = store
        self._catalog = catalog
        self._interval = interval
        #: The earliest occurrence the last pass saw coming (capped at one interval ahead).
        self._soonest = 0.0

    async def fire_due(self, now: float | None = None) -> list[Fired]:
        """One pass: every enabled schedule whose next occurrence is due, once each."""
        now = time.time() if now is None else now
        done: list[Fired] = []
        soonest = now + self._interval
        for schedule in await self._store.schedules():
            due = schedule.next_fire
            if not schedule.enabled or due is None:
                continue
            if due <= now:
                try:
                    done.append(await self._fire(schedule, due, now))
                except StoreUnavailable:
                    raise
                except Exception:  # one bad schedule must not hold up the others
                    log.exception("schedule %s: firing failed; trying again", schedule.id)
                    continue
                due = schedule.following(due) or soonest
            soonest = min(soonest, due)
        self._soonest = soonest
        return done

    async def _fire(self, schedule: Schedule, due: float, now: float) -> Fired:
        misfired = now - due > schedule.misfire_grace
        following = schedule.following(now - schedule.misfire_grace if misfired else due)
        if misfired and schedule.misfire == "skip":
            return await self._advance(schedule, due, following, "skipped_misfire")
        kind = TARGETS[schedule.kind()]
        busy = schedule.concurrency == "skip" and bool(schedule.last_tasks)
        if busy and await kind.running(self._store, schedule.last_tasks):
            return await self._advance(schedule, due, following, "skipped_running")
        try:
            tasks = await kind.submit(
                self._store, self._catalog, schedule.target, occurrence_id(schedule, due)
            )
        except (UnknownTask, InvalidKwargs, ValueError) as exc:
            # The task went away or changed its parameters since the schedule was stored: the
            # occurrence cannot run, and waiting would stop every later one too.
            log.warning("schedule %s: occurrence not submitted: %s", schedule.id, exc)
            return await self._advance(schedule, due, following, "skipped_invalid")
        action = "caught_up" if misfired else "fired"
        return await self._advance(schedule, due, following, action, tasks)

    async def _advance(
        self,
        schedule: Schedule,
        due: float,
        following: float | None,
        action: str,
        tasks: Sequence[str] | None = None,
    ) -> Fired:
        fired_at = due if tasks is not None else None
        won = await self._store.advance_schedule(schedule.id, due, following, fired_at, tasks or ())
        if not won:
            return Fired(schedule.id, due, "lost")
        if action != "fired":
            log.info("schedule %s: occurrence at %.3f %s", schedule.id, due, action)
        return Fired(schedule.id, due, action, tuple(tasks or ()))

    async def run(self, on_error: Callable[[Exception], None] | None = None) -> None:
        """Fire until cancelled, waking at the next occurrence or every ``interval`` seconds."""
        while True:
            try:
                await self.fire_due()
            except StoreUnavailable as exc:
                if on_error is not None:
                    on_error(exc)
            except Exception:
                log.exception("firing schedules failed; trying again")
                self._soonest = time.time() + self._interval
            await asyncio.sleep(min(self._interval, max(0.01, self._soonest - time.time())))
