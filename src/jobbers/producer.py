"""Producers that write straight into the store: the fast path for high-volume submission.

A Manager costs an HTTP round trip per call; a producer in the submitting process skips it, as
arq and saq enqueue straight into Redis. It validates exactly as the API does (the same submission
model, task catalog and kwargs check), so nothing reaches the store that ``POST /tasks`` would
refuse, and it answers with the same task JSON (secrets masked). :class:`AsyncProducer` is the
asyncio flavour; :class:`Producer` runs it on a private event loop for blocking code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from jobbers.api.schemas import BulkSubmission, TaskSubmission
from jobbers.api.serialize import task_json
from jobbers.api.submissions import TaskCatalog, build_tasks, dedupe
from jobbers.client import still_running, submission_body
from jobbers.closing import AsyncClosing, Closing
from jobbers.models import TERMINAL
from jobbers.store import open_store
from jobbers.store.base import Store, TaskNotFound
from jobbers.waiting import TaskWaiters

T = TypeVar("T")


class AsyncProducer(AsyncClosing):
    """Submit, read, wait for and cancel tasks through a store. Pass a URL (the producer opens and
    closes the store) or a store you own."""

    def __init__(self, store: Store | str, *, inline: bool = False) -> None:
        self._owned = isinstance(store, str)
        if isinstance(store, str):
            store = open_store(store, inline=inline)
        self.store: Store = store
        self._catalog = TaskCatalog(self.store)
        self._waiters = TaskWaiters(self.store)

    async def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """The stored task (as the API shows it); options are the API's submission fields."""
        body = submission_body(name, kwargs, queue, id, options)
        submission = TaskSubmission.model_validate(body)
        (new,) = await build_tasks([submission], self._catalog)
        (done,) = await self.store.submit([new])
        return task_json(done.task)

    async def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """All or nothing, in one store call, like ``POST /tasks/bulk``."""
        subs = BulkSubmission.model_validate({"tasks": list(tasks)}).tasks
        unique, positions = dedupe(await build_tasks(subs, self._catalog, bulk=True))
        done = await self.store.submit(unique) if unique else []
        out = [task_json(d.task) for d in done]
        return [out[i] for i in positions]

    async def get(self, task_id: str) -> dict[str, Any]:
        found = await self.store.get([task_id])
        if task_id not in found:
            raise TaskNotFound(task_id)
        await self._catalog.refresh_if_stale()  # learn the secret kwargs workers declared
        return task_json(found[task_id])

    async def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The task once final; :class:`TimeoutError` with its last status otherwise."""
        record = await self._waiters.until_final(task_id, timeout)
        task = task_json(record)
        if record.status not in TERMINAL:
            raise still_running(task_id, task, timeout)
        return task

    async def cancel(self, task_id: str) -> bool:
        """True when this call cancelled the task; False when it had already ended."""
        result = await self.store.cancel([task_id])
        if task_id in result.unknown:
            raise TaskNotFound(task_id)
        return task_id in result.cancelled

    async def close(self) -> None:
        if self._owned:
            await self.store.close()


class Producer(Closing):
    """The blocking flavour: each call runs :class:`AsyncProducer` on a private event loop in the
    calling thread. It belongs to the thread that made it (make one per thread; ``task.submit()``
    does); not for use inside a running event loop (use :class:`AsyncProducer`)."""

    def __init__(self, store: str) -> None:
        self._thread = threading.get_ident()
        self._loop = asyncio.new_event_loop()
        self._inner = self._run(_make(store))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.get_ident() != self._thread:
            coro.close()
            raise RuntimeError("a Producer belongs to the thread that made it: make one per thread")
        return self._loop.run_until_complete(coro)

    def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return self._run(self._inner.submit(name, kwargs, queue=queue, id=id, **options))

    def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._run(self._inner.submit_many(tasks))

    def get(self, task_id: str) -> dict[str, Any]:
        return self._run(self._inner.get(task_id))

    def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return self._run(self._inner.wait(task_id, timeout))

    def cancel(self, task_id: str) -> bool:
        return self._run(self._inner.cancel(task_id))

    def close(self) -> None:
        try:
            self._run(self._inner.close())
        finally:
            self._loop.close()


async def _make(store: str) -> AsyncProducer:
    """Created on the private loop, which runs nothing else: the store may work inline."""
    return AsyncProducer(store, inline=True)
