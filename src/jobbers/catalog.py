"""The task catalog of a Manager or a producer: the tasks this process registered, then the
definitions workers registered in the store.

A Manager may run without the task code: names it does not know locally are looked up in the
definitions workers wrote. That lookup is cached briefly so a busy API does not read the store on
every submission; a miss always looks again, so a worker that has just registered a task is seen
at once. The definitions also tell which kwargs a task declared secret (masked wherever shown).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from jobbers import registry
from jobbers.errors import UnknownTask
from jobbers.intake import TaskDefaults
from jobbers.redact import declare_secrets
from jobbers.store.base import Store


class TaskCatalog:
    """A :class:`~jobbers.intake.Catalog` over this process's registry and a store."""

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
        """Defaults for every name, or :class:`UnknownTask` listing those nobody knows."""
        found: dict[str, TaskDefaults] = {}
        remote: set[str] = set()
        for name in set(names):
            try:
                spec = registry.get_task(name)
            except UnknownTask:
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
            raise UnknownTask(sorted(missing))
        found.update({name: self._cache[name] for name in remote})
        return found
