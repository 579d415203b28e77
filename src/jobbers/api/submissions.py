"""Turn a validated submission into a :class:`NewTask`: the task's defaults, then the caller's.

A Manager may run without the task code: names it does not know locally are looked up in the
task definitions workers registered in the store. That lookup is cached briefly so a busy API
does not read the store on every submission; a miss always looks again, so a worker that has just
registered a task is seen at once. The same definitions tell which kwargs a task accepts (checked
here, before anything is stored) and which it declared secret (masked wherever it is shown).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cached_property
from typing import Any

from jobbers import registry
from jobbers.api.schemas import TaskSubmission
from jobbers.ids import uuid7
from jobbers.models import NewTask, RetryPolicy, TaskDefinition
from jobbers.params import InvalidKwargs, JSONSchema, Problem, check_kwargs, compiled
from jobbers.policy import fingerprint
from jobbers.redact import declare_secrets
from jobbers.store.base import Store

_POLICY_FIELDS = (
    "max_retries",
    "timeout",
    "backoff",
    "base_delay",
    "max_delay",
    "max_heartbeat_interval",
    "dead_letter",
    "max_lost",
)


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


class UnknownTaskNames(Exception):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = sorted(names)
        shown = ", ".join(repr(n) for n in self.names[:10])
        more = f" and {len(self.names) - 10} more" if len(self.names) > 10 else ""
        super().__init__(
            f"unknown task name(s) {shown}{more}: no such task is registered with this Manager "
            "or by any worker (start a worker with --tasks MODULE that defines it)"
        )


class DuplicateInBatch(Exception):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task id {task_id!r} appears twice in the batch with different payloads")
        self.task_id = task_id


class TaskCatalog:
    def __init__(self, store: Store, ttl: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, TaskDefaults] = {}
        self._fetched_at = float("-inf")
        #: Defaults of tasks registered in this process, per name, with the spec they came from.
        self._local: dict[str, tuple[registry.TaskSpec[Any, Any], TaskDefaults]] = {}

    async def _refresh(self) -> None:
        definitions = await self._store.task_definitions()
        for name, definition in definitions.items():
            if name not in registry.registered_names():
                declare_secrets(name, definition.secrets)
        self._cache = {n: TaskDefaults.of(d) for n, d in definitions.items()}
        self._fetched_at = time.monotonic()

    async def refresh_if_stale(self) -> None:
        """Keep secret kwarg names that workers registered known to this process."""
        if time.monotonic() - self._fetched_at > self._ttl:
            await self._refresh()

    def _local_defaults(self, name: str, spec: registry.TaskSpec[Any, Any]) -> TaskDefaults:
        known = self._local.get(name)
        if known is None or known[0] is not spec:  # new, or registered anew since
            known = self._local[name] = (spec, TaskDefaults.of(spec.definition()))
        return known[1]

    async def resolve(self, names: Iterable[str]) -> dict[str, TaskDefaults]:
        """Defaults for every name, or :class:`UnknownTaskNames` listing those nobody knows."""
        found: dict[str, TaskDefaults] = {}
        remote: set[str] = set()
        for name in set(names):
            try:
                spec = registry.get_task(name)
            except registry.UnknownTask:
                remote.add(name)
            else:
                found[name] = self._local_defaults(name, spec)
        if not remote:
            return found
        stale = time.monotonic() - self._fetched_at > self._ttl
        if stale or not remote <= self._cache.keys():
            await self._refresh()
        missing = remote - self._cache.keys()
        if missing:
            raise UnknownTaskNames(sorted(missing))
        found.update({name: self._cache[name] for name in remote})
        return found


def build_task(sub: TaskSubmission, defaults: TaskDefaults, now: float) -> NewTask:
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
    )


async def build_tasks(
    subs: Sequence[TaskSubmission],
    catalog: TaskCatalog,
    now: float | None = None,
    *,
    bulk: bool = False,
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
    return [build_task(s, defaults[s.name], now) for s in subs]


def dedupe(tasks: Sequence[NewTask]) -> tuple[list[NewTask], list[int]]:
    """Unique tasks for the store plus, per input position, the index of its unique task.

    The same id twice with the same payload is one task; with another payload, a 409.
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
            raise DuplicateInBatch(new.id)
        positions.append(index)
    return unique, positions
