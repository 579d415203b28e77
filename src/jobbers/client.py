"""Python clients for the Manager API: :class:`Client` (blocking) and :class:`AsyncClient`.

Both keep one HTTP connection pool alive between calls and share every request's shape through
:class:`_Call`, so the two flavours cannot drift apart. Connection failures and timeouts become
:class:`ManagerUnavailable` (worth retrying); answers with an error code become :class:`APIError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from jobbers.calls import is_final, still_running, submission_body, traced
from jobbers.client_http import AsyncPool, HTTPFailure, Pool, plain_http, query_string
from jobbers.closing import AsyncClosing, Closing
from jobbers.compact_json import exact_loads
from jobbers.errors import APIError as APIError
from jobbers.errors import ClientError as ClientError
from jobbers.errors import ManagerUnavailable as ManagerUnavailable
from jobbers.ids import DOT_SEGMENTS

DEFAULT_URL = "http://127.0.0.1:8000"
#: The API's cap on ids per status call; :meth:`Client.statuses` splits longer lists.
STATUS_BATCH = 10_000
#: Longest single long poll; :meth:`Client.wait` chains them up to its own timeout.
MAX_WAIT = 60.0
#: Extra seconds a long poll's HTTP request may take beyond the wait itself.
WAIT_SLACK = 5.0


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    parse: Callable[[Any], Any] = lambda body: body
    #: Seconds for this request instead of the client's timeout (long polls).
    timeout: float | None = None
    #: The answer holds no user values (kwargs, results), only the API's own strings, numbers
    #: and times: orjson decodes it whatever it holds (see :func:`_loads`).
    plain: bool = False

    def request_args(self) -> dict[str, Any]:
        """What ``httpx`` takes beside the method and path."""
        timeout = httpx.USE_CLIENT_DEFAULT if self.timeout is None else httpx.Timeout(self.timeout)
        return {"json": self.json, "params": self.params or None, "timeout": timeout}

    def target(self) -> str:
        """Path and query, for the plain HTTP/1.1 pool."""
        return f"{self.path}?{query_string(self.params)}" if self.params else self.path

    def body(self) -> bytes | None:
        """The JSON body as httpx would encode it (NaN and infinities refused)."""
        if self.json is None:
            return None
        text = json.dumps(self.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")

    def unavailable(self, exc: Exception) -> ManagerUnavailable:
        return ManagerUnavailable(f"{self.method} {self.path}: {exc}")


def _answer(response: httpx.Response, plain: bool) -> Any:
    return _decoded(response.status_code, response.content, plain)


def _decoded(status: int, content: bytes, plain: bool) -> Any:
    """The JSON of a 2xx answer; :class:`APIError` with the Manager's ``detail`` otherwise."""
    if status == 204:  # no content (a delete)
        return None
    if 200 <= status < 300:
        try:
            return _loads(content, plain)
        except ValueError:
            # Not the Manager talking (a proxy's page, a wrong URL): say what came back.
            raise APIError(status, _text(content)[:500]) from None
    try:
        detail = json.loads(content).get("detail", _text(content))
    except (ValueError, AttributeError):
        detail = _text(content)
    raise APIError(status, detail)


def _loads(content: bytes, plain: bool) -> Any:
    """``plain``: an answer holding no user value, which orjson reads as ``json`` does."""
    if plain:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return exact_loads(content)


def _text(content: bytes) -> str:
    return content.decode("utf-8", "replace")


def _segment(task_id: str) -> str:
    """An id as one path segment: a stray ``/`` or ``?`` must not reach another route, and ``.``
    or ``..`` (which a URL resolves away, reaching the list or bulk route) is refused."""
    if task_id in DOT_SEGMENTS or not task_id:
        raise ValueError(f"{task_id!r} cannot be a task id: no URL can address it")
    return quote(task_id, safe="")


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if v is not None}


class _Calls:
    """The request behind each public method, shared by both clients."""

    @staticmethod
    def submit(
        name: str, kwargs: dict[str, Any] | None, queue: str | None, id: str | None, options: Any
    ) -> _Call:
        return _Call("POST", "/tasks", submission_body(name, kwargs, queue, id, options))

    @staticmethod
    def submit_many(tasks: Sequence[dict[str, Any]]) -> _Call:
        """Each task without a traceparent of its own gets the caller's current span's."""
        return _Call("POST", "/tasks/bulk", {"tasks": traced(tasks)}, parse=lambda b: b["tasks"])

    @staticmethod
    def get(task_id: str) -> _Call:
        return _Call("GET", f"/tasks/{_segment(task_id)}")

    @staticmethod
    def wait(task_id: str, seconds: float) -> _Call:
        """A long poll: the Manager answers when the task ends or after ``seconds``."""
        params = {"timeout": round(seconds, 3)}
        path = f"/tasks/{_segment(task_id)}/wait"
        return _Call("GET", path, params=params, timeout=seconds + WAIT_SLACK)

    @staticmethod
    def statuses(task_ids: Sequence[str]) -> _Call:
        body = {"task_ids": list(task_ids)}
        return _Call("POST", "/task-status/bulk", body, parse=lambda b: b["statuses"], plain=True)

    @staticmethod
    def events(after: str | None, limit: int, wait: float) -> _Call:
        """With ``wait``, a long poll: the Manager answers with the first new event."""
        params = _params({"after": after, "limit": limit})
        timeout = None
        if wait > 0:
            params["wait"] = round(min(wait, MAX_WAIT), 3)
            timeout = params["wait"] + WAIT_SLACK
        return _Call(
            "GET",
            "/events",
            params=params,
            parse=lambda b: (b["events"], b["cursor"]),
            timeout=timeout,
            plain=True,
        )

    @staticmethod
    def latest_cursor() -> _Call:
        return _Call("GET", "/events/latest", parse=lambda b: b["cursor"])

    @staticmethod
    def cancel(task_id: str) -> _Call:
        return _Call("POST", f"/tasks/{_segment(task_id)}/cancel")

    @staticmethod
    def cancel_many(task_ids: Sequence[str]) -> _Call:
        return _Call("POST", "/tasks/cancel", {"task_ids": list(task_ids)})

    @staticmethod
    def list_tasks(filters: dict[str, Any]) -> _Call:
        return _Call("GET", "/tasks", params=_params(filters))

    @staticmethod
    def healthz() -> _Call:
        return _Call("GET", "/healthz")

    @staticmethod
    def queues() -> _Call:
        return _Call("GET", "/queues", parse=lambda b: b["queues"])

    @staticmethod
    def workers() -> _Call:
        return _Call("GET", "/workers", parse=lambda b: b["workers"])

    @staticmethod
    def dead_letter(filters: dict[str, Any]) -> _Call:
        return _Call("GET", "/dead-letter", params=_params(filters))

    @staticmethod
    def resubmit(task_ids: Sequence[str]) -> _Call:
        return _Call("POST", "/dead-letter/resubmit", {"task_ids": list(task_ids)})

    @staticmethod
    def delete_dead(task_ids: Sequence[str]) -> _Call:
        return _Call("POST", "/dead-letter/delete", {"task_ids": list(task_ids)})

    @staticmethod
    def submit_workflow(graph: dict[str, Any] | str, name: str | None) -> _Call:
        if isinstance(graph, str):
            body: dict[str, Any] = {"mermaid": graph} | ({"name": name} if name else {})
        else:
            body = graph | ({"name": name} if name else {})
        return _Call("POST", "/workflows", body)

    @staticmethod
    def workflow(run_id: str) -> _Call:
        return _Call("GET", f"/workflows/{_segment(run_id)}")

    @staticmethod
    def workflows(filters: dict[str, Any]) -> _Call:
        return _Call("GET", "/workflows", params=_params(filters))

    @staticmethod
    def cancel_workflow(run_id: str) -> _Call:
        return _Call("POST", f"/workflows/{_segment(run_id)}/cancel")

    @staticmethod
    def schedules() -> _Call:
        return _Call("GET", "/schedules", parse=lambda b: b["schedules"])

    @staticmethod
    def create_schedule(schedule: dict[str, Any]) -> _Call:
        return _Call("POST", "/schedules", schedule)

    @staticmethod
    def update_schedule(schedule_id: str, changes: dict[str, Any]) -> _Call:
        return _Call("PUT", f"/schedules/{quote(schedule_id, safe='')}", changes)

    @staticmethod
    def delete_schedule(schedule_id: str) -> _Call:
        return _Call("DELETE", f"/schedules/{quote(schedule_id, safe='')}")


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    items = list(ids)
    return [items[i : i + STATUS_BATCH] for i in range(0, len(items), STATUS_BATCH)] or [[]]


def _pool(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    """The connection pool both clients keep: one base URL, the token on every request."""
    return {
        "base_url": url,
        "headers": _auth(token),
        "timeout": httpx.Timeout(timeout),
        "limits": httpx.Limits(
            max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0
        ),
    }


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class _Wait:
    """The long polls behind ``wait``: each asks for what is left of the timeout (at most
    :data:`MAX_WAIT`), so one call waits as long as the caller asked and no longer."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def call(self) -> _Call:
        remaining = max(0.0, self.deadline - time.monotonic())
        return _Calls.wait(self.task_id, min(remaining, MAX_WAIT))

    def done(self, task: dict[str, Any]) -> bool:
        """True once the task is final; raises :class:`TimeoutError` when time is up."""
        if is_final(task):
            return True
        if self.deadline - time.monotonic() <= 0:
            raise still_running(self.task_id, task, self.timeout)
        return False


class Client(Closing):
    """Blocking client; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        #: Plain http:// without a custom transport goes through the lean HTTP/1.1 pool.
        self._fast: Pool | None = None
        self._http: httpx.Client | None = None
        if transport is None and plain_http(url):
            self._fast = Pool(url, _auth(token))
        else:
            self._http = httpx.Client(transport=transport, **_pool(url, token, timeout))

    def _send(self, call: _Call) -> Any:
        if self._fast is not None:
            timeout = self._timeout if call.timeout is None else call.timeout
            try:
                status, content = self._fast.request(
                    call.method, call.target(), call.body(), timeout
                )
            except HTTPFailure as exc:
                raise call.unavailable(exc) from exc
            return call.parse(_decoded(status, content, call.plain))
        assert self._http is not None
        try:
            response = self._http.request(call.method, call.path, **call.request_args())
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise call.unavailable(exc) from exc
        return call.parse(_answer(response, call.plain))

    def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Options are the API's: priority, delay, run_at, max_retries, timeout, backoff, ..."""
        result: dict[str, Any] = self._send(_Calls.submit(name, kwargs, queue, id, options))
        return result

    def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._send(_Calls.submit_many(tasks))
        return result

    def get(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.get(task_id))
        return result

    def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(task_ids):
            out.update(self._send(_Calls.statuses(chunk)))
        return out

    def events(
        self, after: str | None = None, limit: int = 1000, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Events after the cursor ``after``, and the cursor to pass next. With ``wait``
        seconds (at most 60), an empty answer comes only once they pass with nothing new."""
        result: tuple[list[dict[str, Any]], str | None] = self._send(
            _Calls.events(after, limit, wait)
        )
        return result

    def latest_cursor(self) -> str:
        """Cursor of the newest event: pass it to :meth:`events` to see only what comes next."""
        result: str = self._send(_Calls.latest_cursor())
        return result

    def cancel(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.cancel(task_id))
        return result

    def cancel_many(self, task_ids: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.cancel_many(task_ids))
        return result

    def list_tasks(self, **filters: Any) -> dict[str, Any]:
        """Filters: status, queue, name, limit, cursor."""
        result: dict[str, Any] = self._send(_Calls.list_tasks(filters))
        return result

    def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The task once final, answered by the Manager the moment it ends (a long poll, not a
        polling loop); raises :class:`TimeoutError` with its last state."""
        poll = _Wait(task_id, timeout)
        while True:
            task: dict[str, Any] = self._send(poll.call())
            if poll.done(task):
                return task

    def healthz(self) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.healthz())
        return result

    def queues(self) -> list[dict[str, Any]]:
        """Every queue with its limits, pause flag, depth and running count."""
        result: list[dict[str, Any]] = self._send(_Calls.queues())
        return result

    def workers(self) -> list[dict[str, Any]]:
        """The live workers: id, hostname, queues, started_at, last_seen, running, slots."""
        result: list[dict[str, Any]] = self._send(_Calls.workers())
        return result

    def dead_letter(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        queue: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """One page of dead tasks, newest first: ``{"tasks": [...], "cursor": ...}``."""
        filters = {"limit": limit, "cursor": cursor, "queue": queue, "name": name}
        result: dict[str, Any] = self._send(_Calls.dead_letter(filters))
        return result

    def resubmit(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """Dead tasks run again: ``{"resubmitted": [...], "not_resubmitted": [...]}``."""
        result: dict[str, Any] = self._send(_Calls.resubmit(task_ids))
        return result

    def delete_dead(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """Delete dead tasks for good: ``{"deleted": [...], "not_deleted": [...]}``."""
        result: dict[str, Any] = self._send(_Calls.delete_dead(task_ids))
        return result

    def request_json(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """The Manager's JSON answer to any route exactly as sent (``{"queues": [...]}``, not the
        list :meth:`queues` returns): for tools that print the wire shape, and newer routes."""
        return self._send(_Call(method, path, body, _params(params or {})))

    def submit_workflow(
        self, graph: dict[str, Any] | str, name: str | None = None
    ) -> dict[str, Any]:
        """A workflow run from a graph (``Workflow.to_json()``) or Mermaid text."""
        result: dict[str, Any] = self._send(_Calls.submit_workflow(graph, name))
        return result

    def workflow(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.workflow(run_id))
        return result

    def workflows(self, **filters: Any) -> dict[str, Any]:
        """Runs, newest first: ``status``, ``name``, ``limit``, ``cursor``."""
        result: dict[str, Any] = self._send(_Calls.workflows(filters))
        return result

    def cancel_workflow(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send(_Calls.cancel_workflow(run_id))
        return result

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule with its next fire times."""
        result: list[dict[str, Any]] = self._send(_Calls.schedules())
        return result

    def create_schedule(self, schedule: dict[str, Any]) -> dict[str, Any]:
        """``{"cron", "timezone", "target": {"task": name, "kwargs": ...}, ...}``: the stored
        schedule (``APIError`` 422 for a bad cron, time zone or target)."""
        result: dict[str, Any] = self._send(_Calls.create_schedule(schedule))
        return result

    def update_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        """Replace the fields given: ``update_schedule("nightly", enabled=False)``."""
        result: dict[str, Any] = self._send(_Calls.update_schedule(schedule_id, changes))
        return result

    def delete_schedule(self, schedule_id: str) -> None:
        self._send(_Calls.delete_schedule(schedule_id))

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        if self._http is not None:
            self._http.close()


class AsyncClient(AsyncClosing):
    """The same methods as :class:`Client`, awaited; use ``async with`` or await :meth:`close`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._fast: AsyncPool | None = None
        self._http: httpx.AsyncClient | None = None
        if transport is None and plain_http(url):
            self._fast = AsyncPool(url, _auth(token))
        else:
            self._http = httpx.AsyncClient(transport=transport, **_pool(url, token, timeout))

    async def _send(self, call: _Call) -> Any:
        if self._fast is not None:
            timeout = self._timeout if call.timeout is None else call.timeout
            try:
                status, content = await self._fast.request(
                    call.method, call.target(), call.body(), timeout
                )
            except HTTPFailure as exc:
                raise call.unavailable(exc) from exc
            return call.parse(_decoded(status, content, call.plain))
        assert self._http is not None
        try:
            response = await self._http.request(call.method, call.path, **call.request_args())
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise call.unavailable(exc) from exc
        return call.parse(_answer(response, call.plain))

    async def submit(
        self,
        name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.submit(name, kwargs, queue, id, options))
        return result

    async def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._send(_Calls.submit_many(tasks))
        return result

    async def get(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.get(task_id))
        return result

    async def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(task_ids):
            out.update(await self._send(_Calls.statuses(chunk)))
        return out

    async def events(
        self, after: str | None = None, limit: int = 1000, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], str | None]:
        result: tuple[list[dict[str, Any]], str | None] = await self._send(
            _Calls.events(after, limit, wait)
        )
        return result

    async def latest_cursor(self) -> str:
        result: str = await self._send(_Calls.latest_cursor())
        return result

    async def cancel(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.cancel(task_id))
        return result

    async def cancel_many(self, task_ids: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.cancel_many(task_ids))
        return result

    async def list_tasks(self, **filters: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.list_tasks(filters))
        return result

    async def wait(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        poll = _Wait(task_id, timeout)
        while True:
            task: dict[str, Any] = await self._send(poll.call())
            if poll.done(task):
                return task

    async def healthz(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.healthz())
        return result

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue with its limits, pause flag, depth and running count."""
        result: list[dict[str, Any]] = await self._send(_Calls.queues())
        return result

    async def workers(self) -> list[dict[str, Any]]:
        """The live workers: id, hostname, queues, started_at, last_seen, running, slots."""
        result: list[dict[str, Any]] = await self._send(_Calls.workers())
        return result

    async def dead_letter(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        queue: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """One page of dead tasks, newest first: ``{"tasks": [...], "cursor": ...}``."""
        filters = {"limit": limit, "cursor": cursor, "queue": queue, "name": name}
        result: dict[str, Any] = await self._send(_Calls.dead_letter(filters))
        return result

    async def resubmit(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """Dead tasks run again: ``{"resubmitted": [...], "not_resubmitted": [...]}``."""
        result: dict[str, Any] = await self._send(_Calls.resubmit(task_ids))
        return result

    async def delete_dead(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """Delete dead tasks for good: ``{"deleted": [...], "not_deleted": [...]}``."""
        result: dict[str, Any] = await self._send(_Calls.delete_dead(task_ids))
        return result

    async def request_json(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        return await self._send(_Call(method, path, body, _params(params or {})))

    async def submit_workflow(
        self, graph: dict[str, Any] | str, name: str | None = None
    ) -> dict[str, Any]:
        """A workflow run from a graph (``Workflow.to_json()``) or Mermaid text."""
        result: dict[str, Any] = await self._send(_Calls.submit_workflow(graph, name))
        return result

    async def workflow(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.workflow(run_id))
        return result

    async def workflows(self, **filters: Any) -> dict[str, Any]:
        """Runs, newest first: ``status``, ``name``, ``limit``, ``cursor``."""
        result: dict[str, Any] = await self._send(_Calls.workflows(filters))
        return result

    async def cancel_workflow(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(_Calls.cancel_workflow(run_id))
        return result

    async def schedules(self) -> list[dict[str, Any]]:
        """Every schedule with its next fire times."""
        result: list[dict[str, Any]] = await self._send(_Calls.schedules())
        return result

    async def create_schedule(self, schedule: dict[str, Any]) -> dict[str, Any]:
        """``{"cron", "timezone", "target": {"task": name, "kwargs": ...}, ...}``: the stored
        schedule (``APIError`` 422 for a bad cron, time zone or target)."""
        result: dict[str, Any] = await self._send(_Calls.create_schedule(schedule))
        return result

    async def update_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        """Replace the fields given: ``update_schedule("nightly", enabled=False)``."""
        result: dict[str, Any] = await self._send(_Calls.update_schedule(schedule_id, changes))
        return result

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._send(_Calls.delete_schedule(schedule_id))

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        if self._http is not None:
            await self._http.aclose()
