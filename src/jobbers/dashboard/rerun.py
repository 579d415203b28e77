"""Re-running a finished task: a new task with the same name, kwargs, queue, priority and retry
policy, whose id links it to the one it re-runs.

The link lives in the id, ``<id>.rerun-<n>``, so it needs no store field and holds on every
backend as it is: the new task names what it re-runs, and the original finds its re-runs by
looking those ids up in one batched read. Submitting by id is idempotent, so a double click
adds one re-run, not two."""

from __future__ import annotations

import re

from jobbers.ids import MAX_ID_LENGTH
from jobbers.models import TERMINAL, NewTask, Status, TaskRecord
from jobbers.store.base import Store

SUFFIX = ".rerun-"
#: Re-runs one task may have: the look-up reads this many ids at once.
MAX_RERUNS = 100
_RERUN = re.compile(r"^(?P<of>.+)\.rerun-(?P<n>[1-9][0-9]*)$")


def rerun_of(task_id: str) -> str | None:
    """The id of the task this one re-runs, read from its id."""
    found = _RERUN.match(task_id)
    return found.group("of") if found else None


def _ids(task_id: str) -> list[str]:
    return [f"{task_id}{SUFFIX}{n}" for n in range(1, MAX_RERUNS + 1)]


async def reruns(store: Store, task_id: str) -> dict[str, Status]:
    """The re-runs of ``task_id`` that the store still keeps, oldest first, with their status."""
    found = await store.statuses(_ids(task_id))
    return {i: found[i] for i in _ids(task_id) if i in found}


class RerunRefused(Exception):
    """Why a task cannot be re-run; the message is shown as it is."""


async def rerun(store: Store, task: TaskRecord) -> str:
    """Submit the re-run; returns its id."""
    if task.status not in TERMINAL:
        raise RerunRefused(f"only finished tasks are re-run; {task.id} is {task.status.value}")
    existing = await reruns(store, task.id)
    n = 1 + max((int(i.rsplit("-", 1)[1]) for i in existing), default=0)
    if n > MAX_RERUNS:
        raise RerunRefused(f"{task.id} has {MAX_RERUNS} re-runs already; re-run one of those")
    new_id = f"{task.id}{SUFFIX}{n}"
    if len(new_id) > MAX_ID_LENGTH:
        raise RerunRefused("the re-run's id would be too long: re-run the original task instead")
    await store.submit(
        [
            NewTask(
                id=new_id,
                name=task.name,
                kwargs=task.kwargs,
                queue=task.queue,
                priority=task.priority,
                policy=task.policy,
            )
        ]
    )
    return new_id
