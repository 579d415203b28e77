"""Producers that write straight into the store: the fast path for high-volume submission.

A Manager costs an HTTP round trip per call; a producer in the submitting process skips it, as
arq and saq enqueue straight into Redis. It goes through the same intake as ``POST /tasks`` (the
same submission model, task catalog and kwargs check), so nothing reaches the store that the API
would refuse, and it answers as a :class:`~jobbers.Client` does: the same task JSON (secrets
masked), and for a refused call the same :class:`~jobbers.APIError`, with the status and detail
the Manager would have answered. :class:`AsyncProducer` is the asyncio flavour;
:class:`Producer` runs it on a private event loop for blocking code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from pydantic import ValidationError

from jobbers import actions, intake
from jobbers.calls import is_final, still_running, submission_body, traced
from jobbers.catalog import TaskCatalog
from jobbers.closing import AsyncClosing, Closing
from jobbers.errors import APIError, JobbersError
from jobbers.present import bulk_json, cancel_json, refusal, task_json, validation_details
from jobbers.store import open_store
from jobbers.store.base import Store
from jobbers.waiting import TaskWaiters

T = TypeVar("T")


class _AnsweredAsTheAPI:
    """A refusal becomes the :class:`APIError` the Manager would answer; a store outage or a bug
    goes through as it is. A class rather than a generator: it wraps every submission."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, ValidationError):
            raise APIError(422, validation_details(exc.errors(), ("body",))) from None
        if isinstance(exc, JobbersError) and (answer := refusal(exc)) is not None:
            raise APIError(*answer) from exc


_answered_as_the_api = _AnsweredAsTheAPI()


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
        self._write = intake.store_writer(self.store)

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
        with _answered_as_the_api:
            sub = intake.parse_one(submission_body(name, kwargs, queue, id, options))
            done = await intake.submit_one(sub, self._catalog, self._write)
        return task_json(done.task)

    async def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """All or nothing, in one store call, like ``POST /tasks/bulk``."""
        with _answered_as_the_api:
            subs = intake.parse_bulk({"tasks": traced(tasks)})
            done = await intake.submit_bulk(subs, self._catalog, self.store)
        out: list[dict[str, Any]] = bulk_json(done)["tasks"]
        return out

    async def get(self, task_id: str) -> dict[str, Any]:
        """The task with what its attempts said (progress, log lines), as ``GET /tasks/{id}``."""
        await self._catalog.refresh_if_stale()  # learn the secret kwargs workers declared
        with _answered_as_the_api:
            return await actions.read_task(self.store, task_id)

    async def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        """``{id: status}``; unknown ids are left out."""
        return await actions.statuses(self.store, list(task_ids))

    async def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The task once final; :class:`TimeoutError` with its last status otherwise."""
        await self._catalog.refresh_if_stale()
        with _answered_as_the_api:
            task = task_json(await self._waiters.until_final(task_id, timeout))
        if not is_final(task):
            raise still_running(task_id, task, timeout)
        return task

    async def cancel(self, task_id: str) -> dict[str, Any]:
        """The task, cancelled; a 409 :class:`APIError` when it had ended already."""
        await self._catalog.refresh_if_stale()
        with _answered_as_the_api:
            return task_json(await actions.cancel_task(self.store, task_id))

    async def cancel_many(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """``{"cancelled", "not_cancellable", "unknown"}``, one store call."""
        return cancel_json(await self.store.cancel(list(task_ids)))

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

    def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        return self._run(self._inner.statuses(task_ids))

    def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return self._run(self._inner.wait(task_id, timeout))

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._run(self._inner.cancel(task_id))

    def cancel_many(self, task_ids: Sequence[str]) -> dict[str, Any]:
        return self._run(self._inner.cancel_many(task_ids))

    def close(self) -> None:
        try:
            self._run(self._inner.close())
        finally:
            self._loop.close()


async def _make(store: str) -> AsyncProducer:
    """Created on the private loop, which runs nothing else: the store may work inline."""
    return AsyncProducer(store, inline=True)
