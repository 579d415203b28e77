"""The ``jobbers`` command: a thin shell over the Manager, the worker and the client.

Flags win over ``JOBBERS_*`` environment variables, which win over defaults; ``--help`` on each
command names the variable. ``dev`` and ``manager`` embed uvicorn in our own event loop so that
SIGINT and SIGTERM stop the API and let the worker hand its running tasks back first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import typer

from jobbers.registry import load_modules, registered_names
from jobbers.store import DEFAULT_STORE_URL, open_store
from jobbers.store.base import Store, StoreUnavailable, StoreUnreachable
from jobbers.worker.settings import WorkerSettings

#: Every worker option's default comes from WorkerSettings: one place, whether a worker is
#: configured by flags, by JOBBERS_* variables or in Python. (The API, heavier to import, is
#: imported only by the commands that serve it.)
_WORKER = WorkerSettings()

app = typer.Typer(
    help="Jobbers: every task a first-class object. Run `jobbers dev` to try it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="JOBBERS_STORE_URL",
        help="Store URL: sqlite:///jobbers.db, redis://host:6379/0 or rediss://...",
    ),
]
DirectStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="JOBBERS_STORE_URL",
        help="Talk to this store directly instead of the Manager at --url.",
        show_default=False,
    ),
]
UrlOpt = Annotated[str, typer.Option("--url", envvar="JOBBERS_URL", help="The Manager's URL.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="JOBBERS_API_TOKEN", help="API bearer token.", show_default=False
    ),
]
HostOpt = Annotated[str, typer.Option("--host", envvar="JOBBERS_HOST", help="Address to bind.")]
PortOpt = Annotated[int, typer.Option("--port", envvar="JOBBERS_PORT", help="Port to listen on.")]
QueuesOpt = Annotated[
    str, typer.Option("--queues", envvar="JOBBERS_QUEUES", help="Queues to serve, comma separated.")
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option("--concurrency", envvar="JOBBERS_CONCURRENCY", min=1, help="Tasks run at once."),
]
LeaseOpt = Annotated[
    float,
    typer.Option(
        "--lease",
        envvar="JOBBERS_LEASE",
        min=0.1,
        help="Seconds a claimed task stays this worker's without renewal; a killed worker's"
        " tasks are retried after this.",
    ),
]
GraceOpt = Annotated[
    float,
    typer.Option(
        "--grace",
        envvar="JOBBERS_SHUTDOWN_GRACE",
        min=0.0,
        help="Seconds running tasks get to finish on SIGTERM before they are handed back.",
    ),
]
MaintenanceOpt = Annotated[
    float,
    typer.Option(
        "--maintenance-interval",
        envvar="JOBBERS_MAINTENANCE_INTERVAL",
        min=0.01,
        help="Seconds between maintenance passes (promote due retries, reap expired leases,"
        " mark stalled tasks).",
    ),
]
RetentionOpt = Annotated[
    float,
    typer.Option(
        "--retention",
        envvar="JOBBERS_RETENTION",
        min=0.0,
        help="Seconds finished tasks are kept before maintenance prunes them.",
    ),
]
PollCapOpt = Annotated[
    float,
    typer.Option(
        "--poll-cap",
        envvar="JOBBERS_POLL_CAP",
        min=0.01,
        help="Longest idle wait before looking for due work again.",
    ),
]
MaxResultOpt = Annotated[
    int,
    typer.Option(
        "--max-result-bytes",
        envvar="JOBBERS_MAX_RESULT_BYTES",
        min=1,
        help="Largest task result kept, in bytes of JSON; a larger one fails its attempt"
        " (ResultTooLarge, not retried).",
    ),
]
StoreWaitOpt = Annotated[
    float,
    typer.Option(
        "--store-wait",
        envvar="JOBBERS_STORE_WAIT",
        min=0.0,
        help="At start-up, seconds to wait for a store that does not answer before exiting 1"
        " (a bad URL or another schema exits 1 at once).",
    ),
]
TasksOpt = Annotated[
    str,
    typer.Option("--tasks", envvar="JOBBERS_TASKS", help="Task modules to load, comma separated."),
]
LogLevelOpt = Annotated[
    str, typer.Option("--log-level", envvar="JOBBERS_LOG_LEVEL", help="DEBUG, INFO, WARNING...")
]
LogFormatOpt = Annotated[
    str,
    typer.Option(
        "--log-format",
        envvar="JOBBERS_LOG_FORMAT",
        help="text, or json: one JSON object per line with task_id, queue, attempt, worker.",
    ),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"jobbers {version('jobbers')}")
        except PackageNotFoundError:
            typer.echo("jobbers (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Jobbers: every task a first-class object. Run `jobbers dev` to try it."""


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"jobbers: {message}", err=True)
    return typer.Exit(code)


def _load_tasks(modules: str) -> None:
    """Modules resolve from the working directory first, as with uvicorn and celery."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        load_modules(_split(modules))
    except ImportError as exc:
        raise _fail(f"cannot import task module: {exc} (pass --tasks package.module)") from exc


def _open(url: str) -> Store:
    try:
        return open_store(url)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _logging(level: str, fmt: str = "text") -> None:
    from jobbers.logfmt import configure

    if fmt not in ("text", "json"):
        raise _fail(f"--log-format must be text or json, not {fmt!r}", 2)
    configure(level, "json" if fmt == "json" else "text")


def _on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


def _run(main: Coroutine[Any, Any, None], serving: bool = False) -> None:
    """``serving``: the Manager alone, which runs on uvloop where it is installed."""
    from jobbers.api.server import ListenError, loop_factory

    try:
        with asyncio.Runner(loop_factory=loop_factory() if serving else None) as runner:
            runner.run(main)
    except (ListenError, StoreUnavailable) as exc:
        raise _fail(str(exc)) from None


async def _checked(url: str, wait: float = 0.0) -> Store:
    """Open the store and make sure it answers with our schema before anything else runs.

    ``wait``: how long a store that does not answer (not a bad one) may take to come up; a
    worker started beside its store waits, with one line, as Celery workers wait for a broker."""
    store = _open(url)
    deadline = time.monotonic() + wait
    said = False
    try:
        while True:
            try:
                await store.check()
                return store
            except StoreUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise
                if not said:
                    typer.echo(f"{exc}; waiting up to {wait:g} s for it (--store-wait)", err=True)
                    said = True
                await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
    except BaseException:
        await store.close()
        raise


async def _serve(
    store_url: str,
    api: tuple[str, int, str | None] | None,
    worker: WorkerSettings | None,
    announce: Callable[[], None],
) -> None:
    """Run the Manager, a worker, or both on this loop; whichever stops first stops the other.

    ``announce`` prints the banner once the store is known to be usable, so that a refused store
    is the only line a failed start prints."""
    from jobbers.api import create_app
    from jobbers.api.server import embedded_server
    from jobbers.worker import Worker

    store = await _checked(
        store_url, worker.store_wait if worker is not None and api is None else 0.0
    )
    announce()
    server = None
    if api is not None:
        host, port, token = api
        server = embedded_server(create_app(store, token), host, port)
    runner = Worker(store, worker) if worker is not None else None

    signalled = False

    def stop() -> None:
        if server is not None:
            server.stop()
        if runner is not None:
            runner.request_stop()

    def on_signal() -> None:
        """Every signal reaches the worker: a second one skips what is left of the grace."""
        nonlocal signalled
        signalled = True
        stop()

    def on_exit() -> None:
        if not signalled:
            stop()

    _on_signals(on_signal)
    try:
        async with asyncio.TaskGroup() as group:
            if server is not None:
                group.create_task(_then(server.serve_or_raise(), on_exit))
            if runner is not None:
                group.create_task(_then(runner.run(), on_exit))
    except* Exception as errors:
        raise errors.exceptions[0] from None
    finally:
        await store.close()


async def _then(work: Awaitable[None], after: Callable[[], None]) -> None:
    try:
        await work
    finally:
        after()


def _settings(
    queues: str, concurrency: int, grace: float, lease: float, **more: Any
) -> WorkerSettings:
    try:
        return WorkerSettings(
            queues=tuple(_split(queues)),
            concurrency=concurrency,
            shutdown_grace=grace,
            lease=lease,
            **more,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _banner(what: str, **facts: object) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in facts.items())
    typer.echo(f"jobbers {what}: {shown}", err=True)


@app.command()
def dev(
    store: StoreOpt = DEFAULT_STORE_URL,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    tasks: TasksOpt = "jobbers.examples",
    token: TokenOpt = None,
    queues: QueuesOpt = "default",
    concurrency: ConcurrencyOpt = _WORKER.concurrency,
    grace: GraceOpt = 5.0,
    lease: LeaseOpt = _WORKER.lease,
    max_result_bytes: MaxResultOpt = _WORKER.max_result_bytes,
    log_level: LogLevelOpt = "INFO",
    log_format: LogFormatOpt = "text",
) -> None:
    """Manager and one worker in one process, on an embedded SQLite store: no server to install."""
    _logging(log_level, log_format)
    _load_tasks(tasks)
    settings = _settings(queues, concurrency, grace, lease, max_result_bytes=max_result_bytes)

    def announce() -> None:
        _banner(
            "dev",
            api=f"http://{host}:{port}",
            store=store,
            token="set" if token else "none",
            queues=queues,
            concurrency=concurrency,
            tasks=",".join(sorted(registered_names())) or "-",
        )
        if "add" in registered_names():
            auth = " -H 'Authorization: Bearer $JOBBERS_API_TOKEN'" if token else ""
            typer.echo(
                f"try: curl -X POST http://{host}:{port}/tasks -H 'Content-Type: application/json'"
                f'{auth} -d \'{{"name": "add", "kwargs": {{"x": 1, "y": 2}}}}\'',
                err=True,
            )

    _run(_serve(store, (host, port, token), settings, announce))


@app.command()
def manager(
    store: StoreOpt = DEFAULT_STORE_URL,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    token: TokenOpt = None,
    tasks: Annotated[
        str,
        typer.Option(
            "--tasks",
            envvar="JOBBERS_TASKS",
            help="Task modules to load (optional: names registered by workers are accepted).",
        ),
    ] = "",
    log_level: LogLevelOpt = "INFO",
    log_format: LogFormatOpt = "text",
) -> None:
    """The HTTP API. Stateless: run as many as you like against one store."""
    _logging(log_level, log_format)
    _load_tasks(tasks)
    facts = {"api": f"http://{host}:{port}", "store": store, "token": "set" if token else "none"}
    _run(
        _serve(store, (host, port, token), None, lambda: _banner("manager", **facts)),
        serving=True,
    )


@app.command()
def worker(
    tasks: TasksOpt,
    store: StoreOpt = DEFAULT_STORE_URL,
    queues: QueuesOpt = "default",
    concurrency: ConcurrencyOpt = _WORKER.concurrency,
    grace: GraceOpt = _WORKER.shutdown_grace,
    lease: LeaseOpt = _WORKER.lease,
    maintenance_interval: MaintenanceOpt = _WORKER.maintenance_interval,
    retention: RetentionOpt = _WORKER.retention,
    poll_cap: PollCapOpt = _WORKER.poll_cap,
    max_result_bytes: MaxResultOpt = _WORKER.max_result_bytes,
    store_wait: StoreWaitOpt = _WORKER.store_wait,
    log_level: LogLevelOpt = "INFO",
    log_format: LogFormatOpt = "text",
) -> None:
    """Claim and run tasks. SIGTERM or Ctrl+C: stop claiming, finish or hand back, exit 0."""
    _logging(log_level, log_format)
    _load_tasks(tasks)
    settings = _settings(
        queues,
        concurrency,
        grace,
        lease,
        maintenance_interval=maintenance_interval,
        retention=retention,
        poll_cap=poll_cap,
        max_result_bytes=max_result_bytes,
        store_wait=store_wait,
    )
    facts = {"store": store, "queues": queues, "concurrency": concurrency}
    _run(_serve(store, None, settings, lambda: _banner("worker", **facts)))


# ---- talking to a Manager (or straight to a store) ----


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def _via_api(url: str, token: str | None, call: Callable[[Any], Any]) -> None:
    from jobbers.client import APIError, Client, ManagerUnavailable

    try:
        with Client(url, token=token) as client:
            _print(call(client))
    except APIError as exc:
        raise _fail(f"{exc.status_code}: {exc.detail}") from exc
    except ManagerUnavailable as exc:
        raise _fail(
            f"cannot reach the Manager at {url} ({exc}); is `jobbers dev` running?"
        ) from exc


def _via_store(url: str, call: Callable[[Store], Awaitable[Any]]) -> None:
    async def main() -> Any:
        store = await _checked(url)
        try:
            return await call(store)
        finally:
            await store.close()

    from jobbers.api.submissions import UnknownTaskNames
    from jobbers.params import InvalidKwargs
    from jobbers.store.base import StoreError

    try:
        _print(asyncio.run(main()))
    except (StoreError, UnknownTaskNames, InvalidKwargs, LookupError) as exc:
        raise _fail(str(exc)) from None


def _task_id(task_id: str) -> str:
    """Refuse an id no task can have before it reaches a URL (``.`` would name the list route)."""
    from jobbers.ids import id_problem

    problem = id_problem(task_id)
    if problem is not None:
        raise _fail(problem, 2)
    return task_id


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"--kwargs is not valid JSON: {exc}", 2) from exc
    if not isinstance(value, dict):
        raise _fail("--kwargs must be a JSON object, e.g. '{\"x\": 1}'", 2)
    return value


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="Task name, e.g. add.")],
    kwargs: Annotated[
        str, typer.Option("--kwargs", help="Keyword arguments as a JSON object.")
    ] = "{}",
    queue: Annotated[str | None, typer.Option("--queue", help="Override the task's queue.")] = None,
    task_id: Annotated[
        str | None, typer.Option("--id", help="Your own id: resubmitting it is a no-op.")
    ] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Submit a task and print it as JSON."""
    args = _kwargs(kwargs)
    if task_id is not None:
        _task_id(task_id)
    if store is None:
        _via_api(url, token, lambda c: c.submit(name, args, queue=queue, id=task_id))
        return

    async def direct(s: Store) -> Any:
        from pydantic import ValidationError

        from jobbers.producer import AsyncProducer

        try:
            return await AsyncProducer(s).submit(name, args, queue=queue, id=task_id)
        except ValidationError as exc:
            raise _fail(str(exc), 2) from exc

    _via_store(store, direct)


@app.command()
def status(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Print a task: status, result or error, attempts."""
    _task_id(task_id)
    if store is None:
        _via_api(url, token, lambda c: c.get(task_id))
        return

    async def direct(s: Store) -> Any:
        from jobbers.api.task_notes import with_notes
        from jobbers.producer import AsyncProducer

        return with_notes(await AsyncProducer(s).get(task_id), await s.notes(task_id))

    _via_store(store, direct)


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Cancel a task: at once if waiting, at its next await if running."""
    _task_id(task_id)
    if store is None:
        _via_api(url, token, lambda c: c.cancel(task_id))
        return

    async def direct(s: Store) -> Any:
        result = await s.cancel([task_id])
        return {
            "cancelled": result.cancelled,
            "not_cancellable": result.not_cancellable,
            "unknown": result.unknown,
        }

    _via_store(store, direct)


from jobbers import cli_tables  # noqa: E402, F401  (registers tasks, queues, workers, dead-letter)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="jobbers")


if __name__ == "__main__":
    main()
