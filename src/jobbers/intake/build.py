"""Turn a validated submission into a :class:`NewTask`: the task's defaults, then the caller's.

Where the defaults come from is the caller's business: a :class:`Catalog` hands them over by task
name (the Manager's and the producers' look in this process's registry, then in the definitions
workers registered in the store). The same defaults tell which kwargs a task accepts, checked
here before anything is stored.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cached_property
from typing import Any, Protocol

from jobbers.errors import InvalidKwargs
from jobbers.ids import uuid7
from jobbers.intake.submission import TaskSubmission
from jobbers.models import NewTask, RetryPolicy, TaskDefinition
from jobbers.params import JSONSchema, Problem, check_kwargs, compiled
from jobbers.policy import fingerprint
from jobbers.store.base import DuplicateTaskConflict

#: The policy fields a submission may override one by one (``retry_on`` is a list in JSON).
_POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(RetryPolicy) if f.name != "retry_on")


@dataclass(frozen=True)
class TaskDefaults:
    queue: str
    policy: RetryPolicy
    #: None: the definition predates parameter schemas, so any kwargs are accepted.
    parameters: JSONSchema | None = None

    @classmethod
    def of(cls, definition: TaskDefinition) -> TaskDefaults:
        return cls(definition.queue, definition.policy, definition.parameters)

    @cached_property
    def validator(self) -> Any:
        """The parameters' compiled validator, found once per definition rather than per task."""
        return None if self.parameters is None else compiled(self.parameters)


class Catalog(Protocol):
    """Where a submission's task defaults come from, by name."""

    async def resolve(self, names: Iterable[str]) -> dict[str, TaskDefaults]:
        """Defaults for every name, or :class:`~jobbers.errors.UnknownTask` naming the rest."""
        ...

    async def refresh_if_stale(self) -> None:
        """Learn what workers registered lately (secret kwarg names among it)."""
        ...


def build_task(
    sub: TaskSubmission, defaults: TaskDefaults, now: float, trace: str | None = None
) -> NewTask:
    """``trace``: the request's traceparent, for a submission that names none itself."""
    overrides: dict[str, Any] = {
        f: getattr(sub, f) for f in _POLICY_FIELDS if getattr(sub, f) is not None
    }
    if sub.retry_on is not None:
        overrides["retry_on"] = tuple(sub.retry_on)
    policy = dataclasses.replace(defaults.policy, **overrides) if overrides else defaults.policy
    due_at: float | None = None
    if sub.delay is not None:
        due_at = now + sub.delay
    elif sub.run_at is not None:
        run_at = sub.run_at if sub.run_at.tzinfo else sub.run_at.replace(tzinfo=UTC)
        due_at = run_at.timestamp()
    return NewTask(
        id=sub.id or uuid7(),
        name=sub.name,
        kwargs=sub.kwargs,
        queue=sub.queue or defaults.queue,
        priority=sub.priority or 0,
        policy=policy,
        due_at=due_at,
        trace=sub.traceparent or trace,
    )


async def build_tasks(
    subs: Sequence[TaskSubmission],
    catalog: Catalog,
    now: float | None = None,
    *,
    bulk: bool = False,
    trace: str | None = None,
) -> list[NewTask]:
    """All or nothing: one unknown name or one bad set of kwargs rejects the whole batch before
    the store is touched. ``bulk`` only shapes where problems are reported (``tasks[i]``)."""
    now = time.time() if now is None else now
    defaults = await catalog.resolve(s.name for s in subs)
    problems: list[tuple[int, Problem]] = []
    for index, sub in enumerate(subs):
        task = defaults[sub.name]
        if task.parameters is not None:
            problems.extend(
                (index, p)
                for p in check_kwargs(sub.name, task.parameters, sub.kwargs, task.validator)
            )
    if problems:
        raise InvalidKwargs(problems, bulk)
    return [build_task(s, defaults[s.name], now, trace) for s in subs]


def dedupe(tasks: Sequence[NewTask]) -> tuple[list[NewTask], list[int]]:
    """Unique tasks for the store plus, per input position, the index of its unique task.

    The same id twice with the same payload is one task; with another payload, a conflict.
    """
    unique: list[NewTask] = []
    seen: dict[str, int] = {}
    positions: list[int] = []
    for new in tasks:
        index = seen.get(new.id)
        if index is None:
            index = seen[new.id] = len(unique)
            unique.append(new)
        elif fingerprint(unique[index]) != fingerprint(new):
            message = f"task id {new.id!r} appears twice in the batch with different payloads"
            raise DuplicateTaskConflict([new.id], message)
        positions.append(index)
    return unique, positions
