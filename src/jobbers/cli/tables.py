"""Operator commands that read and act through the Manager: readable tables, or JSON for scripts.

They use only the HTTP client, so they work against any Manager (and any store behind it) and are
subject to its token like any other caller. Bulk actions go in chunks, so a progress bar can show
how far a long one has got and an interrupted run has still done the chunks it finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobbers.cli.options import TokenOpt, UrlOpt, app, fail, manager_client

if TYPE_CHECKING:
    from jobbers.cli.layout import Column
    from jobbers.client import Client

#: Ids per request in bulk actions: small enough for a progress bar to move, far below the cap.
CHUNK = 500
DEFAULT_URL = "http://127.0.0.1:8000"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")]
CursorOpt = Annotated[
    str | None, typer.Option("--cursor", help="The cursor a previous page printed.")
]
QueueOpt = Annotated[str | None, typer.Option("--queue", help="Only this queue.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Only tasks with this name.")]

dead_letter = typer.Typer(
    help="The dead letter queue: list, resubmit or delete tasks whose retries are spent.",
    no_args_is_help=True,
)
app.add_typer(dead_letter, name="dead-letter")


def _when(iso: str | None) -> str:
    """ISO time to ``YYYY-MM-DD HH:MM:SS`` (UTC): a table has no room for microseconds."""
    return "-" if not iso else iso[:19].replace("T", " ")


def _show(
    title: str, columns: list[Column], rows: list[list[str]], cursor: str | None = None
) -> None:
    """The table fitted to the terminal's width; ``--json`` has every field in full."""
    from jobbers.cli.layout import show

    console = show(title, columns, rows)
    if cursor:
        console.print(f"more: --cursor {cursor}", soft_wrap=True)


def _columns(*specs: tuple[str, int, int | None, bool]) -> list[Column]:
    from jobbers.cli.layout import Column

    return [Column(header, rank, shrink_to, wrap) for header, rank, shrink_to, wrap in specs]


def _progress_text(progress: dict[str, Any] | None) -> str:
    """``42% row 42 of 100``, or ``-`` before the attempt reports any."""
    if progress is None:
        return "-"
    return f"{progress['fraction']:.0%} {progress['message']}".strip()


def _task_rows(title: str, page: dict[str, Any]) -> None:
    columns = _columns(
        ("id", 0, None, False),
        ("name", 2, 16, False),
        ("queue", 5, 8, False),
        ("status", 1, None, False),
        ("attempts", 6, None, False),
        ("progress", 3, 12, False),
        ("updated", 4, None, False),
    )
    rows = [
        [
            task["id"],
            task["name"],
            task["queue"],
            task["status"],
            str(len(task["attempts"])),
            _progress_text(task.get("progress")),
            _when(task["updated_at"]),
        ]
        for task in page["tasks"]
    ]
    _show(title, columns, rows, page.get("cursor"))


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command("tasks")
def list_tasks(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    queue: QueueOpt = None,
    name: NameOpt = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """List tasks, newest first, as a table."""
    with manager_client(url, token) as client:
        page = client.list_tasks(status=status, queue=queue, name=name, limit=limit, cursor=cursor)
    if as_json:
        _json(page)
    else:
        _task_rows("tasks", page)


@app.command("queues")
def list_queues(
    as_json: JsonOpt = False, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None
) -> None:
    """Queues with their depth, running tasks, limits and pause flag."""
    with manager_client(url, token) as client:
        answer = client.request_json("GET", "/queues")
    if as_json:
        _json(answer)
        return
    columns = _columns(
        ("name", 0, 8, False),
        ("waiting", 1, None, False),
        ("scheduled", 5, None, False),
        ("running", 3, None, False),
        ("concurrency", 6, None, False),
        ("rate", 7, None, False),
        ("paused", 4, None, False),
        ("no worker", 2, 20, True),
    )
    rows = []
    for q in answer["queues"]:
        rate = "-" if q["rate_limit"] is None else f"{q['rate_limit']}/{q['rate_period']:g}s"
        rows.append(
            [
                q["name"],
                str(q["depth"]),
                str(q["scheduled"]),
                str(q["running"]),
                "-" if q["concurrency"] is None else str(q["concurrency"]),
                rate,
                "paused" if q["paused"] else "",
                unrunnable_text(q.get("unrunnable") or {}),
            ]
        )
    _show("queues", columns, rows)


def unrunnable_text(unrunnable: dict[str, int]) -> str:
    """ "N tasks that no live worker can run (names)", or "" when every waiting task has one."""
    if not unrunnable:
        return ""
    count = sum(unrunnable.values())
    return f"{count} task(s) that no live worker can run ({', '.join(sorted(unrunnable))})"


@app.command("workers")
def list_workers(
    as_json: JsonOpt = False, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None
) -> None:
    """Live workers: their queues, running tasks of their slots and when they last renewed."""
    with manager_client(url, token) as client:
        answer = client.request_json("GET", "/workers")
    if as_json:
        _json(answer)
        return
    columns = _columns(
        ("id", 0, None, False),
        ("hostname", 5, 8, False),
        ("queues", 1, 8, True),
        ("running", 2, None, False),
        ("slots", 3, None, False),
        ("started", 6, None, False),
        ("last seen", 4, None, False),
    )
    rows = [
        [
            w["id"],
            w["hostname"],
            ", ".join(w["queues"]),
            str(w["running"]),
            str(w["slots"]),
            _when(w["started_at"]),
            _when(w["last_seen"]),
        ]
        for w in answer["workers"]
    ]
    _show("workers", columns, rows)


@dead_letter.command("list")
def dead_list(
    queue: QueueOpt = None,
    name: NameOpt = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Dead tasks, newest first, with the last error."""
    with manager_client(url, token) as client:
        page = client.dead_letter(limit=limit, cursor=cursor, queue=queue, name=name)
    if as_json:
        _json(page)
        return
    columns = _columns(
        ("id", 0, None, False),
        ("name", 1, 10, False),
        ("queue", 4, 8, False),
        ("attempts", 5, None, False),
        ("last error", 2, 30, False),
        ("finished", 3, None, False),
    )
    rows = []
    for task in page["tasks"]:
        error = task["error"] or {}
        rows.append(
            [
                task["id"],
                task["name"],
                task["queue"],
                str(len(task["attempts"])),
                f"{error.get('type', '')}: {error.get('message', '')}" if error else "-",
                _when(task["finished_at"]),
            ]
        )
    _show("dead letter", columns, rows, page.get("cursor"))


def _selected(
    client: Client, ids: Sequence[str], every: bool, queue: str | None, name: str | None
) -> list[str]:
    if ids and (every or queue or name):
        raise fail("give task ids, or --all / --queue / --name, not both", 2)
    if ids:
        return list(dict.fromkeys(ids))
    if not (every or queue or name):
        raise fail("give task ids, or --all / --queue / --name to select dead tasks", 2)
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = client.dead_letter(limit=1000, cursor=cursor, queue=queue, name=name)
        found.extend(t["id"] for t in page["tasks"])
        cursor = page["cursor"]
        if cursor is None:
            return found


def _in_chunks(
    verb: str, ids: list[str], act: Callable[[list[str]], dict[str, Any]], quiet: bool
) -> dict[str, list[str]]:
    """Run ``act`` on chunks of ids, merging the answers; a bar on stderr unless ``quiet``."""
    from rich.console import Console
    from rich.progress import Progress

    merged: dict[str, list[str]] = {}
    with Progress(console=Console(stderr=True), disable=quiet or len(ids) <= CHUNK) as bar:
        job = bar.add_task(verb, total=len(ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for key, values in act(chunk).items():
                merged.setdefault(key, []).extend(values)
            bar.advance(job, len(chunk))
    return merged


IdsArg = Annotated[list[str] | None, typer.Argument(help="Dead task ids.", show_default=False)]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Every dead task (or those matching the filters).")
]


def _bulk_command(
    command: str,
    verb: str,
    act: Callable[[Client], Callable[[list[str]], dict[str, Any]]],
    doc: str,
) -> None:
    """Register one dead-letter bulk command; resubmit and delete differ only in the call."""

    def run(
        ids: IdsArg = None,
        every: AllOpt = False,
        queue: QueueOpt = None,
        name: NameOpt = None,
        as_json: JsonOpt = False,
        url: UrlOpt = DEFAULT_URL,
        token: TokenOpt = None,
    ) -> None:
        with manager_client(url, token) as client:
            selected = _selected(client, ids or [], every, queue, name)
            result = _in_chunks(verb, selected, act(client), as_json)
        if as_json:
            _json(result)
            return
        typer.echo(f"{verb}: {len(result.get(verb, []))} task(s)")
        for key in (k for k in result if k != verb):
            if result[key]:
                typer.echo(f"{key.replace('_', ' ')}: {', '.join(result[key])}")

    run.__doc__ = doc
    dead_letter.command(command)(run)


_bulk_command(
    "resubmit",
    "resubmitted",
    lambda c: c.resubmit,
    "Run dead tasks again with the same id and a fresh retry budget.",
)
_bulk_command(
    "delete",
    "deleted",
    lambda c: c.delete_dead,
    "Delete dead tasks for good; tasks in any other status are left alone.",
)


@app.command("logs")
def task_logs(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    attempt: Annotated[
        int | None, typer.Option("--attempt", min=1, help="This attempt (default: the latest).")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """A task's progress and the log lines its code emitted, for one attempt."""
    with manager_client(url, token) as client:
        task = client.get(task_id)
    attempts = task["attempts"]
    chosen = [a for a in attempts if attempt is None or a["number"] == attempt][-1:]
    if not chosen:
        raise fail(f"task {task_id} has no attempt {attempt}" if attempt else "not started yet")
    (shown,) = chosen
    if as_json:
        _json(shown)
        return
    progress = shown["progress"]
    status = f"{task['status']}, attempt {shown['number']} of {len(attempts)}"
    if progress:
        status += f", {progress['fraction']:.0%} {progress['message']}".rstrip()
    typer.echo(f"{task_id}: {status}")
    for line in shown["logs"]:
        typer.echo(f"{_when(line['at'])} {line['level']:<7} {line['message']}")
