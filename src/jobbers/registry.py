"""Declaring tasks: ``@task`` records a function, its name, queue and policy in a registry.

Workers run what their registry holds; the Manager accepts names its registry holds or that a
worker has registered in the store.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypedDict,
    TypeVar,
    Unpack,
    overload,
)

from jobbers.errors import UnknownTask as UnknownTask  # looked up by name here
from jobbers.injection import Dependency, injected_params
from jobbers.models import BACKOFFS, Backoff, DeadLetter, RetryPolicy, TaskDefinition
from jobbers.params import JSONSchema, parameters_schema
from jobbers.redact import declare_secrets

if TYPE_CHECKING:
    from jobbers.handle import AsyncTaskHandle, TaskHandle
    from jobbers.submitting import BoundSubmit

P = ParamSpec("P")
R = TypeVar("R")
#: ``"process"``: the body runs in a child process that is killed on cancel or timeout.
Isolation = Literal["process"] | None


class TaskContext:
    """Handed to a task that asks for it (a parameter annotated ``TaskContext`` or named ``ctx``).

    ``heartbeat()`` only records a time in memory; the worker ships it with its next lease renewal,
    so calling it in a tight loop costs nothing.
    """

    def __init__(self, task_id: str, attempt: int, worker_id: str, hostname: str) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.worker_id = worker_id
        self.hostname = hostname
        self.last_heartbeat: float | None = None
        #: The latest ``progress()`` call: (fraction, message), shipped with the attempt's logs.
        self.last_progress: tuple[float, str] | None = None
        self.cancel_requested = False

    def heartbeat(self) -> None:
        import time

        self.last_heartbeat = time.time()

    def progress(self, fraction: float, message: str = "") -> None:
        """Say how far the attempt has got (0.0 to 1.0, clamped) and what it is doing.

        Like ``heartbeat()`` (which it also counts as), it only records the value; the worker
        ships the latest one within a second, so calling it often costs nothing.
        """
        value = min(max(float(fraction), 0.0), 1.0)
        self.last_progress = (0.0 if value != value else value, str(message)[:500])
        self.heartbeat()


@dataclass(frozen=True)
class TaskSpec(Generic[P, R]):
    name: str
    fn: Callable[P, R]
    queue: str
    policy: RetryPolicy
    is_async: bool
    #: Name of the parameter that receives the TaskContext, if the function asks for one.
    context_param: str | None = None
    params: frozenset[str] = field(default_factory=frozenset)
    isolate: Isolation = None
    #: The keyword arguments a submission may pass, as JSON Schema (see :mod:`jobbers.params`).
    parameters: JSONSchema = field(default_factory=dict)
    #: Kwarg names shown as ``***`` besides the built-in secret keys.
    secrets: frozenset[str] = frozenset()
    #: Parameters filled by providers (``Depends``) for each attempt, never by a submission.
    injected: Mapping[str, Dependency] = field(default_factory=dict)

    def definition(self) -> TaskDefinition:
        """What a worker registers in the store for Managers that lack this code."""
        return TaskDefinition(
            self.name, self.queue, self.policy, dict(self.parameters), tuple(sorted(self.secrets))
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Calling the decorated function runs it directly, as if it were not a task; one that
        takes a context gets a local one unless the call passes its own."""
        fn: Callable[..., R] = self.fn
        ctx = self.context_param
        if (
            ctx is not None
            and ctx not in kwargs
            and not (args and isinstance(args[0], TaskContext))
        ):
            kwargs[ctx] = TaskContext("local", 1, "local", "localhost")
        return fn(*args, **kwargs)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Submit with the function's own arguments, checked against its signature before
        anything is sent: ``greet.submit(name="Ada")``. See :meth:`options` for ``id``,
        ``queue``, ``delay`` ... and the client to use."""
        return self.options().submit(*args, **kwargs)

    async def submit_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle:
        """:meth:`submit` from asyncio code: ``await greet.submit_async(name="Ada")``."""
        return await self.options().submit_async(*args, **kwargs)

    def options(
        self,
        *,
        id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        client: Any = None,
    ) -> BoundSubmit[P]:
        """Submission options, then ``.submit(...)`` with the task's arguments:
        ``greet.options(id="greet-ada", delay=5).submit(name="Ada")``. ``client`` is a
        :class:`~jobbers.Client`, :class:`~jobbers.Producer` (or their async flavours for
        :meth:`submit_async`); by default one is made from the environment."""
        if _binder is None:
            raise RuntimeError("task.submit() needs jobbers.submitting: import jobbers first")
        chosen = {
            "id": id,
            "queue": queue,
            "priority": priority,
            "delay": delay,
            "run_at": run_at,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        return _binder(self, chosen, client)


class Binder(Protocol):
    """Makes what :meth:`TaskSpec.options` returns from the task, its options and the client."""

    def __call__(
        self, spec: TaskSpec[P, Any], options: dict[str, Any], client: Any
    ) -> BoundSubmit[P]: ...


#: Installed by :mod:`jobbers.submitting` as it is imported (``import jobbers`` imports it): the
#: registry, which every worker loads, stays free of the clients that submission reaches.
_binder: Binder | None = None


def install_binder(binder: Binder) -> None:
    global _binder
    _binder = binder


_REGISTRY: dict[str, TaskSpec[Any, Any]] = {}


def _policy(
    max_retries: int,
    backoff: Backoff,
    base_delay: float,
    max_delay: float,
    retry_on: Iterable[type[BaseException] | str],
    timeout: float | None,
    max_heartbeat_interval: float | None,
    dead_letter: DeadLetter,
    max_lost: int,
) -> RetryPolicy:
    if backoff not in BACKOFFS:
        raise ValueError(f"backoff must be one of {', '.join(BACKOFFS)}, not {backoff!r}")
    if max_retries < 0 or base_delay < 0 or max_delay < 0 or max_lost < 0:
        raise ValueError("max_retries, max_lost, base_delay and max_delay must not be negative")
    if dead_letter not in ("save", "drop"):
        raise ValueError(f"dead_letter must be 'save' or 'drop', not {dead_letter!r}")
    names = tuple(t if isinstance(t, str) else _type_name(t) for t in retry_on)
    return RetryPolicy(
        max_retries=max_retries,
        backoff=backoff,
        base_delay=base_delay,
        max_delay=max_delay,
        retry_on=names,
        timeout=timeout,
        max_heartbeat_interval=max_heartbeat_interval,
        dead_letter=dead_letter,
        max_lost=max_lost,
    )


def _type_name(exc_type: type[BaseException]) -> str:
    if exc_type.__module__ == "builtins":
        return exc_type.__qualname__
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def error_type_name(exc: BaseException) -> str:
    return _type_name(type(exc))


def error_base_names(exc: BaseException) -> tuple[str, ...]:
    """The exception's base classes by name, nearest first: what ``retry_on`` also matches."""
    return tuple(_type_name(c) for c in type(exc).__mro__[1:] if issubclass(c, BaseException))


def _context_param(fn: Callable[..., Any]) -> tuple[str | None, frozenset[str]]:
    sig = inspect.signature(fn)
    ctx_name = None
    for param in sig.parameters.values():
        annotation = param.annotation
        is_ctx = annotation is TaskContext or annotation in ("TaskContext", "jobbers.TaskContext")
        if is_ctx or param.name == "ctx":
            ctx_name = param.name
            break
    return ctx_name, frozenset(p for p in sig.parameters if p != ctx_name)


def register_task(
    fn: Callable[P, R],
    *,
    name: str | None = None,
    queue: str = "default",
    max_retries: int = RetryPolicy.max_retries,
    backoff: Backoff = RetryPolicy.backoff,
    base_delay: float = RetryPolicy.base_delay,
    max_delay: float = RetryPolicy.max_delay,
    retry_on: Iterable[type[BaseException] | str] = RetryPolicy.retry_on,
    timeout: float | None = RetryPolicy.timeout,
    max_heartbeat_interval: float | None = RetryPolicy.max_heartbeat_interval,
    dead_letter: DeadLetter = RetryPolicy.dead_letter,
    secrets: Iterable[str] = (),
    isolate: Isolation = None,
    max_lost: int = RetryPolicy.max_lost,
) -> TaskSpec[P, R]:
    if isolate not in (None, "process"):
        raise ValueError(f"isolate must be 'process' or None, not {isolate!r}")
    if isolate == "process" and fn.__module__ == "__main__":
        raise ValueError(
            "isolate='process' needs the task in an importable module (its child process"
            " imports it), not in __main__"
        )
    task_name = name or f"{fn.__module__}.{fn.__qualname__}"
    ctx_param, params = _context_param(fn)
    injected = injected_params(fn)
    params = params - injected.keys()
    if injected and isolate == "process":
        raise ValueError(
            f"task {task_name!r}: isolate='process' cannot take Depends() parameters (providers"
            " run in the worker, their values cannot cross to the child process)"
        )
    secret_names = frozenset([secrets] if isinstance(secrets, str) else secrets)
    unknown = secret_names - params
    if unknown and not _takes_any_kwarg(fn):
        raise ValueError(f"secrets names kwargs {task_name!r} does not take: {sorted(unknown)}")
    spec: TaskSpec[P, R] = TaskSpec(
        name=task_name,
        fn=fn,
        queue=queue,
        policy=_policy(
            max_retries,
            backoff,
            base_delay,
            max_delay,
            retry_on,
            timeout,
            max_heartbeat_interval,
            dead_letter,
            max_lost,
        ),
        is_async=inspect.iscoroutinefunction(fn),
        context_param=ctx_param,
        params=params,
        parameters=parameters_schema(fn, ctx_param, injected.keys()),
        secrets=secret_names,
        isolate=isolate,
        injected=injected,
    )
    existing = _REGISTRY.get(task_name)
    if existing is not None and existing.fn is not fn:
        raise ValueError(f"task name {task_name!r} is already registered by {existing.fn!r}")
    _REGISTRY[task_name] = spec
    declare_secrets(task_name, secret_names)
    return spec


def _takes_any_kwarg(fn: Callable[..., Any]) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


class _Decorator(Protocol):
    """What ``@task(...)`` returns: a decorator typed like ``@task`` itself."""

    @overload
    def __call__(self, fn: Callable[Concatenate[TaskContext, P], R], /) -> TaskSpec[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> TaskSpec[P, R]: ...


class TaskOptions(TypedDict, total=False):
    """``@task(...)``'s keywords: those of :func:`register_task`, where their defaults are."""

    name: str | None
    queue: str
    max_retries: int
    backoff: Backoff
    base_delay: float
    max_delay: float
    retry_on: Iterable[type[BaseException] | str]
    timeout: float | None
    max_heartbeat_interval: float | None
    dead_letter: DeadLetter
    secrets: Iterable[str]
    isolate: Isolation
    max_lost: int


@overload
def task(fn: Callable[Concatenate[TaskContext, P], R], /) -> TaskSpec[P, R]: ...


@overload
def task(fn: Callable[P, R], /) -> TaskSpec[P, R]: ...


@overload
def task(**options: Unpack[TaskOptions]) -> _Decorator: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Register a function as a task: ``@task`` or ``@task(queue="q", max_retries=3)``.

    ``secrets=("api_key",)`` names kwargs that the API, CLI and dashboard show as ``***``, like the
    built-in secret keys.
    """
    if fn is not None:
        return register_task(fn, **options)

    def decorate(f: Callable[..., Any]) -> TaskSpec[..., Any]:
        return register_task(f, **options)

    return decorate


#: What ``on_worker_start`` registered, in order.
_WORKER_START: list[Callable[[], Awaitable[None]]] = []


def on_worker_start(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Run ``fn`` (an async function without arguments) in every worker that loads this
    module, as the worker starts: a warm-up that its first task would otherwise wait for (a
    connection pool, a helper process). It runs beside the worker's first claims, not before
    them; an exception is logged and the worker goes on."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@on_worker_start takes an async function, not {fn!r}")
    _WORKER_START.append(fn)
    return fn


def worker_start_hooks() -> list[Callable[[], Awaitable[None]]]:
    return list(_WORKER_START)


def get_task(name: str) -> TaskSpec[Any, Any]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTask(name, f"no task named {name!r} is registered") from None


def registered_names() -> set[str]:
    return set(_REGISTRY)


def load_modules(modules: Iterable[str]) -> None:
    """Import task modules (``a.b,c.d`` from the CLI) so their decorators register."""
    for module in modules:
        module = module.strip()
        if module:
            importlib.import_module(module)
