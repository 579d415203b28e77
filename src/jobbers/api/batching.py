"""Group commit: concurrent single submissions share one store transaction.

A submission never waits for a timer. The first one to arrive while the store is idle is written
at once (after one turn of the event loop, which gathers requests that arrived together); those
that arrive while a write is in flight queue up and go together in the next. A sequential client
therefore sees no added latency, and a hundred concurrent clients cost a few transactions instead
of a hundred. Each request is answered only after the transaction holding its task has committed,
so nothing answered 201 can be lost.

A conflicting id (another payload under the same id) would make the store refuse the whole batch;
the batch is then written again one task at a time, so only the conflicting request gets its 409.
"""

from __future__ import annotations

import asyncio

from jobbers.models import NewTask
from jobbers.store.base import DuplicateTaskConflict, Store, Submitted

#: Most tasks in one group commit; more wait for the next one.
MAX_BATCH = 500


class SubmitBatcher:
    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: list[tuple[NewTask, asyncio.Future[Submitted]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, task: NewTask) -> Submitted:
        future: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        self._pending.append((task, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="jobbers-group-commit")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            await self._write(batch)

    async def _write(self, batch: list[tuple[NewTask, asyncio.Future[Submitted]]]) -> None:
        try:
            done = await self._store.submit([task for task, _ in batch])
        except DuplicateTaskConflict:
            if len(batch) == 1:
                _settle(batch, exc=DuplicateTaskConflict([batch[0][0].id]))
                return
            for item in batch:
                await self._write([item])
            return
        except Exception as exc:
            _settle(batch, exc=exc)
            return
        for (_, future), submitted in zip(batch, done, strict=True):
            if not future.done():
                future.set_result(submitted)


def _settle(batch: list[tuple[NewTask, asyncio.Future[Submitted]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
