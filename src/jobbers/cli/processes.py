"""``jobbers dev``, ``manager`` and ``worker``: the long-running processes.

``dev`` and ``manager`` embed uvicorn in our own event loop so that SIGINT and SIGTERM stop the
API and let the worker hand its running tasks back first.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import typer

from jobbers.cli.options import (
    WORKER,
    ConcurrencyOpt,
    GraceOpt,
    HostOpt,
    LeaseOpt,
    LogFormatOpt,
    LogLevelOpt,
    MaintenanceOpt,
    MaxResultOpt,
    NoSchedulesOpt,
    PollCapOpt,
    PortOpt,
    QueuesOpt,
    RetentionOpt,
    StoreOpt,
    StoreWaitOpt,
    TasksOpt,
    TokenOpt,
    app,
    configure_logging,
    fail,
    load_tasks,
    open_checked,
    split_list,
)
from jobbers.registry import registered_names
from jobbers.store import DEFAULT_STORE_URL, shown
from jobbers.store.base import StoreUnavailable
from jobbers.worker.settings import WorkerSettings


def _on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


def _run(main: Coroutine[Any, Any, None], serving: bool = False) -> None:
    """``serving``: the Manager alone, which runs on uvloop where it is installed."""
    from jobbers.errors import ListenError
    from jobbers.http.server import loop_factory

    try:
        with asyncio.Runner(loop_factory=loop_factory() if serving else None) as runner:
            runner.run(main)
    except (ListenError, StoreUnavailable) as exc:
        raise fail(str(exc)) from None


async def _serve(
    store_url: str,
    api: tuple[str, int, str | None] | None,
    worker: WorkerSettings | None,
    announce: Callable[[], None],
) -> None:
    """Run the Manager, a worker, or both on this loop; whichever stops first stops the other.

    ``announce`` prints the banner once the store is known to be usable, so that a refused store
    is the only line a failed start prints."""
    from jobbers.http.server import embedded_server
    from jobbers.manager import create_app
    from jobbers.worker import Worker

    store = await open_checked(
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
            queues=tuple(split_list(queues)),
            concurrency=concurrency,
            shutdown_grace=grace,
            lease=lease,
            **more,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc


def try_command(host: str, port: int, token: bool) -> str:
    """A curl line that works pasted into a POSIX shell: the token is read from the shell's
    environment (double quotes expand it), so the banner never prints the secret itself."""
    auth = ' -H "Authorization: Bearer $JOBBERS_API_TOKEN"' if token else ""
    return (
        f"curl -X POST http://{host}:{port}/tasks -H 'Content-Type: application/json'"
        f'{auth} -d \'{{"name": "add", "kwargs": {{"x": 1, "y": 2}}}}\''
    )


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
    concurrency: ConcurrencyOpt = WORKER.concurrency,
    grace: GraceOpt = 5.0,
    lease: LeaseOpt = WORKER.lease,
    max_result_bytes: MaxResultOpt = WORKER.max_result_bytes,
    log_level: LogLevelOpt = "INFO",
    log_format: LogFormatOpt = "text",
) -> None:
    """Manager and one worker in one process, on an embedded SQLite store: no server to install."""
    configure_logging(log_level, log_format)
    load_tasks(tasks)
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
            typer.echo(f"try: {try_command(host, port, token is not None)}", err=True)
            if token and os.environ.get("JOBBERS_API_TOKEN") != token:
                typer.echo("(set JOBBERS_API_TOKEN to the --token value in that shell)", err=True)

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
    configure_logging(log_level, log_format)
    load_tasks(tasks)
    facts = {
        "api": f"http://{host}:{port}",
        "store": shown(store),
        "token": "set" if token else "none",
    }
    _run(
        _serve(store, (host, port, token), None, lambda: _banner("manager", **facts)),
        serving=True,
    )


@app.command()
def worker(
    tasks: TasksOpt,
    store: StoreOpt = DEFAULT_STORE_URL,
    queues: QueuesOpt = "default",
    concurrency: ConcurrencyOpt = WORKER.concurrency,
    grace: GraceOpt = WORKER.shutdown_grace,
    lease: LeaseOpt = WORKER.lease,
    maintenance_interval: MaintenanceOpt = WORKER.maintenance_interval,
    retention: RetentionOpt = WORKER.retention,
    no_schedules: NoSchedulesOpt = False,
    poll_cap: PollCapOpt = WORKER.poll_cap,
    max_result_bytes: MaxResultOpt = WORKER.max_result_bytes,
    store_wait: StoreWaitOpt = WORKER.store_wait,
    log_level: LogLevelOpt = "INFO",
    log_format: LogFormatOpt = "text",
) -> None:
    """Claim and run tasks. SIGTERM or Ctrl+C: stop claiming, finish or hand back, exit 0."""
    configure_logging(log_level, log_format)
    load_tasks(tasks)
    settings = _settings(
        queues,
        concurrency,
        grace,
        lease,
        maintenance_interval=maintenance_interval,
        retention=retention,
        fire_schedules=not no_schedules,
        poll_cap=poll_cap,
        max_result_bytes=max_result_bytes,
        store_wait=store_wait,
    )
    facts = {"store": shown(store), "queues": queues, "concurrency": concurrency}
    _run(_serve(store, None, settings, lambda: _banner("worker", **facts)))
