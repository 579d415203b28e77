"""Waiting for tasks to end: a caller is woken as soon as its task is final, without polling.

One watcher per store serves every waiting caller (the Manager's long polls, a producer's
handles): it sleeps in ``store.wait_for_change`` and, after each change, reads the awaited tasks
in one call and hands each caller its final record, so a caller is answered without reading again.
A few awaited tasks are read whole; many are read as statuses first, then only the final ones in
full. A hundred callers waiting therefore cost one or two store reads per change, not a hundred,
and nothing here depends on the backend beyond the store contract.
"""

from __future__ import annotations

import asyncio
import contextlib

from jobbers.models import TERMINAL, TaskRecord
from jobbers.store.base import Store, TaskNotFound

#: Longest long poll the Manager holds (a task's end, the change feed): under common proxy and
#: load-balancer idle timeouts.
MAX_WAIT = 60.0
#: The watcher looks again at least this often, whatever ``wait_for_change`` promises.
RECHECK = 0.25
#: Up to this many awaited tasks, the watcher reads whole records after a change (one store
#: call hands each caller its final task); beyond, statuses first, then only the final ones.
SMALL = 16


class TaskWaiters:
    def __init__(self, store: Store) -> None:
        self._store = store
        #: Each caller's future gets the final record, or None when the task is gone.
        self._waiting: dict[str, list[asyncio.Future[TaskRecord | None]]] = {}
        self._watcher: asyncio.Task[None] | None = None
        #: The watcher sleeps until the next change: a task registered now is not read by it.
        self._sleeping = False

    async def until_final(self, task_id: str, timeout: float) -> TaskRecord:
        """The task once final, or as it stands after ``timeout`` seconds."""
        future = self.register(task_id)
        try:
            if self._sleeping:
                # The watcher looks again only after the next change: look now.
                found = await self._store.get([task_id])
                if task_id not in found:
                    raise TaskNotFound(task_id)
                if found[task_id].status in TERMINAL:
                    return found[task_id]
            # Otherwise the watcher reads this task before it sleeps: no read of our own.
            try:
                record = await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                record = (await self._store.get([task_id])).get(task_id)
        finally:
            self.forget(task_id, future)
        if record is None:  # unknown, or deleted while waited for
            raise TaskNotFound(task_id)
        return record

    def register(self, task_id: str) -> asyncio.Future[TaskRecord | None]:
        """Register before reading the task: a change after the read then wakes the watcher."""
        future: asyncio.Future[TaskRecord | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(task_id, []).append(future)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="jobbers-task-waiters")
        return future

    def forget(self, task_id: str, future: asyncio.Future[TaskRecord | None]) -> None:
        futures = self._waiting.get(task_id, [])
        with contextlib.suppress(ValueError):
            futures.remove(future)
        if not futures:
            self._waiting.pop(task_id, None)

    async def _watch(self) -> None:
        try:
            while self._waiting:
                ids = list(self._waiting)
                for task_id, record in (await self._final(ids)).items():
                    self._wake(task_id, record)
                if not self._waiting:
                    return
                if self._waiting.keys() - set(ids):
                    continue  # registered during the read: look at them before sleeping
                self._sleeping = True
                try:
                    await self._store.wait_for_change(RECHECK)
                finally:
                    self._sleeping = False
        except Exception as exc:  # the store failed: every waiting request answers with it
            for task_id in list(self._waiting):
                self._wake(task_id, exc)

    async def _final(self, ids: list[str]) -> dict[str, TaskRecord | None]:
        """The awaited tasks that are final (their records) or gone (None)."""
        if len(ids) > SMALL:
            statuses = await self._store.statuses(ids)
            ids = [i for i in ids if statuses.get(i) is None or statuses[i] in TERMINAL]
            if not ids:
                return {}
        found = await self._store.get(ids)
        out: dict[str, TaskRecord | None] = {}
        for task_id in ids:
            record = found.get(task_id)
            if record is None or record.status in TERMINAL:
                out[task_id] = record
        return out

    def _wake(self, task_id: str, outcome: TaskRecord | Exception | None) -> None:
        for future in self._waiting.pop(task_id, []):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
