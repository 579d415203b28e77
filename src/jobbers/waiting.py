"""Waiting for tasks to end: a caller is woken as soon as its task is final, without polling.

One watcher per store serves every waiting caller (the Manager's long polls, a producer's
handles): it sleeps in ``store.wait_for_change`` and, after each change, asks the store for the
statuses of all awaited tasks in one call. A hundred callers waiting therefore cost one store read
per change, not a hundred, and nothing here depends on the backend beyond the store contract.
"""

from __future__ import annotations

import asyncio
import contextlib

from jobbers.models import TERMINAL, TaskRecord
from jobbers.store.base import Store, TaskNotFound

#: The watcher looks again at least this often, whatever ``wait_for_change`` promises.
RECHECK = 0.25


class TaskWaiters:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def until_final(self, task_id: str, timeout: float) -> TaskRecord:
        """The task once final, or as it stands after ``timeout`` seconds."""
        future = self.register(task_id)
        try:
            found = await self._store.get([task_id])
            if task_id not in found:
                raise TaskNotFound(task_id)
            if found[task_id].status not in TERMINAL and await self.wait(future, timeout):
                found = await self._store.get([task_id])
        finally:
            self.forget(task_id, future)
        if task_id not in found:  # deleted while waited for
            raise TaskNotFound(task_id)
        return found[task_id]

    def register(self, task_id: str) -> asyncio.Future[None]:
        """Register before reading the task: a change after the read then wakes the watcher."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(task_id, []).append(future)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="jobbers-task-waiters")
        return future

    def forget(self, task_id: str, future: asyncio.Future[None]) -> None:
        futures = self._waiting.get(task_id, [])
        with contextlib.suppress(ValueError):
            futures.remove(future)
        if not futures:
            self._waiting.pop(task_id, None)

    async def wait(self, future: asyncio.Future[None], timeout: float) -> bool:
        """True when the task ended within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        return True

    async def _watch(self) -> None:
        try:
            while self._waiting:
                ids = list(self._waiting)
                statuses = await self._store.statuses(ids)
                for task_id in ids:
                    status = statuses.get(task_id)
                    if status is None or status in TERMINAL:
                        self._wake(task_id, None)
                if not self._waiting:
                    return
                if self._waiting.keys() - set(ids):
                    continue  # registered during the read: look at them before sleeping
                await self._store.wait_for_change(RECHECK)
        except Exception as exc:  # the store failed: every waiting request answers with it
            for task_id in list(self._waiting):
                self._wake(task_id, exc)

    def _wake(self, task_id: str, error: Exception | None) -> None:
        for future in self._waiting.pop(task_id, []):
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
