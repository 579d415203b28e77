"""Typed submission: ``greet.submit(name="Ada")`` checked against ``greet``'s signature.

The arguments are bound to the function's signature (the task context left out) before anything
is sent, so a typo is a :class:`TypeError` in the caller, as it is for mypy through the
decorator's ParamSpec. Options that are not the task's arguments (``id``, ``queue``, ``delay`` ...)
go through :meth:`jobbers.registry.TaskSpec.options`, which keeps the argument list the
function's own.

Where the task goes: an explicit ``client=`` (a :class:`~jobbers.Client`,
:class:`~jobbers.AsyncClient`, :class:`~jobbers.Producer` or :class:`~jobbers.AsyncProducer`);
else a store producer when ``JOBBERS_STORE_URL`` is set (no HTTP: the fast path for high-volume
producers); else a client for ``JOBBERS_URL`` (default ``http://127.0.0.1:8000``) with
``JOBBERS_API_TOKEN``. Those defaults are made once per process (per event loop for the async
ones) and reused, so each submission does not open a connection.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import os
import threading
import weakref
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

from jobbers import registry
from jobbers.handle import AsyncSource, AsyncTaskHandle, Source, TaskHandle
from jobbers.registry import TaskSpec

P = ParamSpec("P")
R = TypeVar("R")

ENV_URL = "JOBBERS_URL"
ENV_TOKEN = "JOBBERS_API_TOKEN"
ENV_STORE = "JOBBERS_STORE_URL"


@dataclass(frozen=True)
class SubmitOptions:
    """The submission fields besides the kwargs; None leaves the task's default."""

    id: str | None = None
    queue: str | None = None
    priority: int | None = None
    delay: float | None = None
    run_at: datetime | None = None
    max_retries: int | None = None
    timeout: float | None = None

    def fields(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.run_at is not None:
            out["run_at"] = self.run_at.isoformat()
        return {k: v for k, v in out.items() if v is not None}


class BoundSubmit(Generic[P]):
    """A task with submission options fixed: ``greet.options(id="x").submit(name="Ada")``."""

    def __init__(self, spec: TaskSpec[P, Any], options: SubmitOptions, client: Any) -> None:
        self._spec = spec
        self._options = options
        self._client = client

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Submit and return at once; the handle waits for the result when asked."""
        body = _body(self._spec, self._options, args, kwargs)
        source: Source = self._client if self._client is not None else default_source()
        task = source.submit(self._spec.name, **body)
        return TaskHandle(task, source)

    async def submit_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle:
        body = _body(self._spec, self._options, args, kwargs)
        source: AsyncSource = self._client if self._client is not None else default_async_source()
        task = await source.submit(self._spec.name, **body)
        return AsyncTaskHandle(task, source)


def _bind(spec: TaskSpec[P, Any], options: dict[str, Any], client: Any) -> BoundSubmit[P]:
    return BoundSubmit(spec, SubmitOptions(**options), client)


registry.install_binder(_bind)


def _body(
    spec: TaskSpec[Any, Any], options: SubmitOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    return {"kwargs": bind_kwargs(spec, args, kwargs), **options.fields()}


def bind_kwargs(
    spec: TaskSpec[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments as the kwargs a worker will pass, or :class:`TypeError`."""
    signature = submit_signature(spec)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        problem = _binding_problem(signature, args, kwargs, exc)
        raise TypeError(f"{spec.name}.submit(): {problem}") from None
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError(f"{spec.name}.submit(): *{name} cannot be sent (keywords only)")
        else:
            out[name] = value
    return out


def _binding_problem(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any], exc: TypeError
) -> str:
    """Every unknown keyword and every missing argument in one message: ``inspect`` names only
    the first problem, and for a misspelt keyword that is the missing argument, not the typo."""
    params = signature.parameters
    kinds = {p.kind for p in params.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return str(exc)
    keywords = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = [k for k in kwargs if k not in keywords]
    if not unknown:
        return str(exc)
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, [k for k in keywords if k not in kwargs], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"unexpected keyword argument {name!r}{hint}")
    positional = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ][: len(args)]
    given = set(positional) | set(kwargs)
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and n not in given
    ]
    if missing:
        noun = "a required argument" if len(missing) == 1 else "required arguments"
        problems.append(f"missing {noun}: " + ", ".join(repr(n) for n in missing))
    return "; ".join(problems)


def submit_signature(spec: TaskSpec[Any, Any]) -> inspect.Signature:
    signature = inspect.signature(spec.fn)
    skip = {spec.context_param, *spec.injected}
    params = [p for p in signature.parameters.values() if p.name not in skip]
    return signature.replace(parameters=params)


_lock = threading.Lock()
#: The shared client; a producer is kept per thread instead (it runs its own event loop).
_default: Source | None = None
_per_thread = threading.local()
_producers: list[Source] = []
_async_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSource] = (
    weakref.WeakKeyDictionary()
)


def default_source() -> Source:
    """The blocking producer (this thread's) or client (the process's), made on first use from
    the environment."""
    global _default
    store_url = os.environ.get(ENV_STORE)
    if store_url:
        producer: Source | None = getattr(_per_thread, "producer", None)
        if producer is None:
            from jobbers.producer import Producer

            producer = _per_thread.producer = Producer(store_url)
            with _lock:
                _producers.append(producer)
        return producer
    with _lock:
        if _default is None:
            from jobbers.client import DEFAULT_URL, Client

            url = os.environ.get(ENV_URL, DEFAULT_URL)
            _default = Client(url, token=os.environ.get(ENV_TOKEN))
        return _default


def default_async_source() -> AsyncSource:
    """The running event loop's async producer or client, made on first use."""
    loop = asyncio.get_running_loop()
    source = _async_defaults.get(loop)
    if source is None:
        store_url = os.environ.get(ENV_STORE)
        if store_url:
            from jobbers.producer import AsyncProducer

            source = AsyncProducer(store_url)
        else:
            from jobbers.client import DEFAULT_URL, AsyncClient

            url = os.environ.get(ENV_URL, DEFAULT_URL)
            source = AsyncClient(url, token=os.environ.get(ENV_TOKEN))
        _async_defaults[loop] = source
    return source


def reset_defaults() -> None:
    """Forget the default producers and client (tests, or after changing the environment).
    Producers made by other threads are forgotten, not closed: only their thread may close them."""
    global _default
    with _lock:
        if _default is not None:
            _default.close()
        _default = None
        _producers.clear()
    producer = getattr(_per_thread, "producer", None)
    if producer is not None:
        producer.close()
        _per_thread.producer = None
    _async_defaults.clear()
