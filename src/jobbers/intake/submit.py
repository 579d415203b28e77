"""The one submission pipeline: validate, build, dedupe, store. The Manager's routes, its fast
path and the producers each call these and only shape the answer.

A single submission is written through ``write``, which the caller picks: the Manager's group
commit (concurrent requests share a transaction) or a plain store call. A bulk one goes to the
store in one call, its duplicates folded first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobbers.intake.build import Catalog, build_tasks, dedupe
from jobbers.intake.submission import BulkSubmission, TaskSubmission
from jobbers.models import NewTask
from jobbers.store.base import Store, Submitted

#: Stores one task and answers how it went.
Write = Callable[[NewTask], Awaitable[Submitted]]


def parse_one(data: Any) -> TaskSubmission:
    """A submission from its JSON value; pydantic's ``ValidationError`` when it does not fit."""
    return TaskSubmission.model_validate(data)


def parse_bulk(data: Any) -> list[TaskSubmission]:
    """The submissions of a ``{"tasks": [...]}`` value (at most 10,000)."""
    return BulkSubmission.model_validate(data).tasks


def store_writer(store: Store) -> Write:
    """``write`` for :func:`submit_one` straight to the store, one call per task."""

    async def write(task: NewTask) -> Submitted:
        (done,) = await store.submit([task])
        return done

    return write


async def submit_one(
    sub: TaskSubmission, catalog: Catalog, write: Write, trace: str | None = None
) -> Submitted:
    """The stored task; ``created`` is False for an id that held this payload already.
    ``trace``: the request's traceparent (a submission's own wins)."""
    await catalog.refresh_if_stale()
    (new,) = await build_tasks([sub], catalog, trace=trace)
    return await write(new)


async def submit_bulk(
    subs: Sequence[TaskSubmission], catalog: Catalog, store: Store, trace: str | None = None
) -> list[Submitted]:
    """All or nothing, in one store call; one answer per submission, in order (an id given twice
    with one payload is one task, answered twice)."""
    await catalog.refresh_if_stale()
    unique, positions = dedupe(await build_tasks(subs, catalog, bulk=True, trace=trace))
    done = await store.submit(unique) if unique else []
    return [done[i] for i in positions]
