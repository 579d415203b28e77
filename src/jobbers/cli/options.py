"""The ``jobbers`` command's Typer app, its shared options and the helpers every command uses.

Flags win over ``JOBBERS_*`` environment variables, which win over defaults; ``--help`` on each
command names the variable.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobbers.registry import load_modules
from jobbers.store import open_store
from jobbers.store.base import Store, StoreUnreachable
from jobbers.worker.settings import WorkerSettings

if TYPE_CHECKING:
    from jobbers.client import Client

#: Every worker option's default comes from WorkerSettings: one place, whether a worker is
#: configured by flags, by JOBBERS_* variables or in Python. (The API, heavier to import, is
#: imported only by the commands that serve it.)
WORKER = WorkerSettings()

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
        help="Store URL: sqlite:///jobbers.db, redis://host:6379/0, rediss://..."
        " or postgresql://user@host:5432/db",
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
NoSchedulesOpt = Annotated[
    bool,
    typer.Option(
        "--no-schedules",
        envvar="JOBBERS_NO_SCHEDULES",
        help="Fire no cron schedules from this worker (by default every worker fires them; each"
        " occurrence fires once).",
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


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def fail(message: str, code: int = 1) -> typer.Exit:
    for line in message.splitlines() or [""]:
        typer.echo(f"jobbers: {line}", err=True)
    return typer.Exit(code)


def refusal(status: int, detail: Any) -> str:
    """An error answer as lines a person reads: a 422's problems one per line (``field path:
    message``), anything else ``status: detail``."""
    if isinstance(detail, list) and detail and all(isinstance(p, dict) for p in detail):
        return "\n".join(f"{_field(p.get('loc') or [])}: {p.get('msg', '')}" for p in detail)
    return f"{status}: {detail}"


def _field(loc: list[Any]) -> str:
    """``["body", "tasks", 0, "kwargs", "x"]`` as ``tasks[0].kwargs.x``: where the value sits in
    what the caller sent (``body`` and ``query`` say only how it was sent)."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path") and len(loc) > 1 else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out or "body"


@contextmanager
def manager_client(url: str, token: str | None) -> Iterator[Client]:
    """A client for one command; a refusal or an unreachable Manager becomes lines and exit 1."""
    from jobbers.client import APIError, Client, ManagerUnavailable

    try:
        with Client(url, token=token) as client:
            yield client
    except APIError as exc:
        raise fail(refusal(exc.status_code, exc.detail)) from None
    except ManagerUnavailable as exc:
        raise fail(
            f"cannot reach the Manager at {url} ({exc}); is `jobbers dev` running?"
        ) from None


def load_tasks(modules: str) -> None:
    """Modules resolve from the working directory first, as with uvicorn and celery."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        load_modules(split_list(modules))
    except ImportError as exc:
        raise fail(f"cannot import task module: {exc} (pass --tasks package.module)") from exc


def open_or_exit(url: str) -> Store:
    try:
        return open_store(url)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def configure_logging(level: str, fmt: str = "text") -> None:
    from jobbers.logfmt import configure

    if fmt not in ("text", "json"):
        raise fail(f"--log-format must be text or json, not {fmt!r}", 2)
    configure(level, "json" if fmt == "json" else "text")


async def open_checked(url: str, wait: float = 0.0) -> Store:
    """Open the store and make sure it answers with our schema before anything else runs.

    ``wait``: how long a store that does not answer (not a bad one) may take to come up; a
    worker started beside its store waits, with one line, as Celery workers wait for a broker."""
    store = open_or_exit(url)
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
