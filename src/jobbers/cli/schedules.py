"""``jobbers schedules``: list schedules with their next fire times, add, enable, disable and
delete them, through the Manager (its token applies)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jobbers.cli.options import TokenOpt, UrlOpt, app, fail, manager_client
from jobbers.cli.tables import DEFAULT_URL, JsonOpt, _columns, _json, _show, _when

schedules = typer.Typer(
    help="Cron schedules: list (the default), add, enable, disable, delete.",
    invoke_without_command=True,
)
app.add_typer(schedules, name="schedules")

IdArg = Annotated[str, typer.Argument(help="The schedule's id.")]


def _rows(found: list[dict[str, Any]]) -> None:
    columns = _columns(
        ("id", 0, 10, False),
        ("cron", 1, None, False),
        ("timezone", 5, 10, False),
        ("target", 2, 14, False),
        ("enabled", 4, None, False),
        ("next fire", 3, None, False),
        ("last fire", 6, None, False),
    )
    rows = []
    for s in found:
        target = s["target"]
        kind = "workflow" if "workflow" in target else "task"
        what = target["workflow"].get("name", "-") if kind == "workflow" else target.get("task")
        rows.append(
            [
                s["id"],
                s["cron"],
                s["timezone"],
                f"{what}" if kind == "task" else f"workflow {what}",
                "yes" if s["enabled"] else "no",
                _when(s["next_fire"]),
                _when(s["last_fire"]),
            ]
        )
    _show("schedules", columns, rows)


@schedules.callback()
def list_schedules(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Every schedule with its next fire time (UTC)."""
    if ctx.invoked_subcommand is not None:
        return
    with manager_client(url, token) as client:
        answer = client.request_json("GET", "/schedules")
    if as_json:
        _json(answer)
    else:
        _rows(answer["schedules"])


@schedules.command("add")
def add(
    cron: Annotated[str, typer.Argument(help='Quoted: "*/5 * * * *" (6 fields: seconds first).')],
    task: Annotated[str, typer.Argument(help="The task to submit at each occurrence.")],
    kwargs: Annotated[str, typer.Option("--kwargs", help="The task's kwargs as JSON.")] = "{}",
    schedule_id: Annotated[str | None, typer.Option("--id", help="Chosen if absent.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA name.")] = "UTC",
    queue: Annotated[str | None, typer.Option("--queue")] = None,
    misfire: Annotated[str, typer.Option("--misfire", help="skip or run_once.")] = "skip",
    concurrency: Annotated[
        str, typer.Option("--concurrency", help="always, or skip while the last run runs.")
    ] = "always",
    disabled: Annotated[bool, typer.Option("--disabled", help="Store it disabled.")] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Add a schedule submitting TASK at every occurrence of CRON."""
    try:
        parsed = json.loads(kwargs)
    except ValueError as exc:
        raise fail(f"--kwargs is not JSON: {exc}") from None
    target: dict[str, Any] = {"task": task, "kwargs": parsed}
    if queue:
        target["queue"] = queue
    body: dict[str, Any] = {
        "cron": cron,
        "timezone": timezone,
        "target": target,
        "misfire": misfire,
        "concurrency": concurrency,
        "enabled": not disabled,
    }
    if schedule_id:
        body["id"] = schedule_id
    with manager_client(url, token) as client:
        created = client.create_schedule(body)
    typer.echo(f"{created['id']}: next fire {_when(created['next_fire'])} UTC")


def _set_enabled(schedule_id: str, enabled: bool, url: str, token: str | None) -> None:
    with manager_client(url, token) as client:
        changed = client.update_schedule(schedule_id, enabled=enabled)
    state = f"next fire {_when(changed['next_fire'])} UTC" if enabled else "disabled"
    typer.echo(f"{schedule_id}: {state}")


@schedules.command("enable")
def enable(schedule_id: IdArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Enable a schedule: it fires from its next occurrence on (missed ones are not caught up)."""
    _set_enabled(schedule_id, True, url, token)


@schedules.command("disable")
def disable(schedule_id: IdArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Disable a schedule; its runs already submitted go on."""
    _set_enabled(schedule_id, False, url, token)


@schedules.command("delete")
def delete(schedule_id: IdArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Delete a schedule; its runs already submitted go on."""
    with manager_client(url, token) as client:
        client.delete_schedule(schedule_id)
    typer.echo(f"{schedule_id}: deleted")
