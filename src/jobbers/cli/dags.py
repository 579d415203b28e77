"""``jobbers dag``: workflow runs through the Manager (submit a graph file, status, list,
cancel), as readable tables or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jobbers.cli.options import TokenOpt, UrlOpt, app, fail, manager_client
from jobbers.cli.tables import DEFAULT_URL, CursorOpt, JsonOpt, _columns, _json, _show, _when

dag = typer.Typer(
    help="Workflow runs: submit a graph, follow and cancel runs.", no_args_is_help=True
)
app.add_typer(dag, name="dag")

FileArg = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, help="A graph as JSON (.json) or Mermaid flowchart text."
    ),
]
RunArg = Annotated[str, typer.Argument(help="The run's id.")]


def _graph(path: Path) -> dict[str, Any] | str:
    text = path.read_text()
    if path.suffix == ".json":
        try:
            data: dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise fail(f"{path} is not JSON: {exc}", 2) from exc
        return data
    return text


def _nodes(run: dict[str, Any]) -> None:
    title = f"run {run['id']} {run['name']}: {run['status']}"
    columns = _columns(
        ("node", 0, 8, False),
        ("task", 2, 12, False),
        ("status", 1, None, False),
        ("task id", 3, 12, False),
    )
    rows = [
        [node["id"], node["task"], node["status"] or "-", node["task_id"] or "-"]
        for node in run["nodes"]
    ]
    rows += [["(fan-out)", t["name"], t["status"], t["id"]] for t in run.get("tasks", [])]
    _show(title, columns, rows)


@dag.command("submit")
def submit(
    file: FileArg,
    name: Annotated[str | None, typer.Option("--name", help="The run's name.")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Submit a workflow; the whole graph is checked first and nothing is stored on an error."""
    with manager_client(url, token) as client:
        run = client.submit_workflow(_graph(file), name)
    if as_json:
        _json(run)
    else:
        _nodes(run)


@dag.command("status")
def status(
    run_id: RunArg,
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="Print the diagram with each node's status.")
    ] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """A run's status and each node's."""
    with manager_client(url, token) as client:
        run = client.workflow(run_id)
    if mermaid:
        from jobbers.workflows import mermaid as diagram
        from jobbers.workflows.graph import parse

        graph = parse({"name": run["name"], "nodes": run["nodes"], "edges": run["edges"]})
        statuses = {n["id"]: n["status"] for n in run["nodes"] if n["status"]}
        typer.echo(diagram.render(graph, statuses), nl=False)
    elif as_json:
        _json(run)
    else:
        _nodes(run)


@dag.command("list")
def list_runs(
    status: Annotated[
        str | None, typer.Option("--status", help="running, completed, failed or cancelled.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only runs of this name.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Runs, newest first."""
    with manager_client(url, token) as client:
        page = client.workflows(status=status, name=name, limit=limit, cursor=cursor)
    if as_json:
        _json(page)
        return
    columns = _columns(
        ("id", 0, None, False),
        ("name", 2, 12, False),
        ("status", 1, None, False),
        ("created", 3, None, False),
    )
    rows = [
        [run["id"], run["name"], run["status"], _when(run["created_at"])] for run in page["runs"]
    ]
    _show("workflow runs", columns, rows, page.get("cursor"))


@dag.command("cancel")
def cancel(run_id: RunArg, url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Cancel what has not finished; nothing of the run starts afterwards."""
    with manager_client(url, token) as client:
        run = client.cancel_workflow(run_id)
    typer.echo(f"run {run['id']}: {run['status']} ({len(run['cancelled'])} task(s) cancelled)")
