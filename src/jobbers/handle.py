"""What ``task.submit()`` returns: the submitted task's id and the calls that follow it.

A handle talks to whatever submitted it (a Manager's client or a store producer) through the
same four calls, so code that waits for results does not care which path the task took.
"""

from __future__ import annotations

from typing import Any, Protocol

from jobbers.errors import APIError
from jobbers.errors import TaskFailed as TaskFailed


class Source(Protocol):
    """What a blocking handle needs: :class:`~jobbers.Client` and :class:`~jobbers.Producer`."""

    def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]: ...

    def get(self, task_id: str) -> dict[str, Any]: ...

    def wait(self, task_id: str, timeout: float = ...) -> dict[str, Any]: ...

    def cancel(self, task_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class AsyncSource(Protocol):
    """:class:`~jobbers.AsyncClient` and :class:`~jobbers.AsyncProducer`."""

    async def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]: ...

    async def get(self, task_id: str) -> dict[str, Any]: ...

    async def wait(self, task_id: str, timeout: float = ...) -> dict[str, Any]: ...

    async def cancel(self, task_id: str) -> dict[str, Any]: ...


def _result(task: dict[str, Any]) -> Any:
    if task.get("status") != "completed":
        raise TaskFailed(task)
    return task.get("result")


def _cancelled(task: dict[str, Any]) -> bool:
    return task.get("status") == "cancelled"


def _ended_already(exc: APIError) -> bool:
    """A 409: the task had ended, so the call cancelled nothing; anything else raises."""
    if exc.status_code == 409:
        return False
    raise exc


class TaskHandle:
    def __init__(self, task: dict[str, Any], source: Source) -> None:
        self.id: str = task["id"]
        #: The task as the submission answered it (secrets masked).
        self.submitted = task
        self._source = source

    def status(self) -> str:
        status: str = self._source.get(self.id)["status"]
        return status

    def result(self, timeout: float = 30.0) -> Any:
        """The task's result once it completes (no polling: the call returns when it ends).

        Raises :class:`TaskFailed` when it ends otherwise, :class:`TimeoutError` after
        ``timeout`` seconds."""
        return _result(self._source.wait(self.id, timeout))

    def cancel(self) -> bool:
        """True when this call cancelled the task; False when it had already ended."""
        try:
            return _cancelled(self._source.cancel(self.id))
        except APIError as exc:
            return _ended_already(exc)

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"


class AsyncTaskHandle:
    """:class:`TaskHandle` for asyncio code: the same calls, awaited."""

    def __init__(self, task: dict[str, Any], source: AsyncSource) -> None:
        self.id: str = task["id"]
        self.submitted = task
        self._source = source

    async def status(self) -> str:
        status: str = (await self._source.get(self.id))["status"]
        return status

    async def result(self, timeout: float = 30.0) -> Any:
        return _result(await self._source.wait(self.id, timeout))

    async def cancel(self) -> bool:
        try:
            return _cancelled(await self._source.cancel(self.id))
        except APIError as exc:
            return _ended_already(exc)

    def __repr__(self) -> str:
        return f"AsyncTaskHandle({self.id!r})"
