"""The operator commands as a person reads them at 60, 80 and 120 columns, and as a script reads
them with ``--json``, against a real ``jobbers dev`` whose tasks report progress."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner, Result

import jobbers.examples  # noqa: F401  (add and sleep, known to a producer in this process)
from jobbers import Client
from jobbers.cli import app
from jobbers.cli.layout import Column, widths
from jobbers.cli.options import refusal
from jobbers.cli.processes import try_command

from .conftest import DevServer, start_dev

LONG = "reports.monthly_summary_for_every_customer"
MESSAGE = "row 42 of 100, customers in the north region"

TASKS = f'''
import asyncio
from jobbers import TaskContext, task


@task(name="{LONG}")
async def long_named(ctx: TaskContext, seconds: float = 60.0) -> None:
    ctx.progress(0.42, "{MESSAGE}")
    await asyncio.sleep(seconds)
'''

runner = CliRunner()


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    workdir = tmp_path_factory.mktemp("fit")
    (workdir / "fit_tasks.py").write_text(TASKS)
    server = start_dev(workdir, "--grace", "0", "--tasks", "fit_tasks,jobbers.examples")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def running(manager: DevServer) -> list[dict[str, Any]]:
    """Two long-named tasks reporting progress, one finished task, one no worker serves."""
    with Client(manager.url) as client:
        ids = [client.submit(LONG)["id"] for _ in range(2)]
        client.wait(client.submit("add", {"x": 1, "y": 2})["id"], timeout=10)
        client.submit("add", {"x": 1, "y": 2}, queue="nobody")
        deadline = time.monotonic() + 10
        while True:
            tasks = client.list_tasks(limit=10)["tasks"]
            if all(t["progress"] for t in tasks if t["id"] in ids):
                return list(tasks)
            assert time.monotonic() < deadline, tasks
            time.sleep(0.05)


def _cli(server: DevServer, *args: str, columns: int = 80) -> Result:
    result = runner.invoke(app, [*args, "--url", server.url], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


def _table(output: str) -> list[dict[str, str]]:
    """Rows of a printed table as {header: cell}, cells cut at the header's column starts."""
    lines = output.splitlines()
    header = lines[1]
    names = header.split()
    starts = [header.index(f"{n} " if n != names[-1] else n) for n in names]
    # "last seen" and "no worker" are one header of two words.
    merged: list[tuple[str, int]] = []
    for name, at in zip(names, starts, strict=True):
        if merged and at - (merged[-1][1] + len(merged[-1][0])) == 1:
            merged[-1] = (f"{merged[-1][0]} {name}", merged[-1][1])
        else:
            merged.append((name, at))
    bounds = [at for _, at in merged] + [None]
    return [
        {name: line[bounds[i] : bounds[i + 1]].strip() for i, (name, _) in enumerate(merged)}
        for line in lines[2:]
    ]


def _whole_or_cut(cell: str, value: str) -> bool:
    """The cell shows the value whole, or its start and an ellipsis: never a piece of a word
    continued on another line."""
    return cell == value or (cell.endswith("…") and len(cell) > 1 and value.startswith(cell[:-1]))


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_tasks_fit_the_width_one_line_per_task(
    manager: DevServer, running: list[dict[str, Any]], columns: int
) -> None:
    output = _cli(manager, "tasks", "--limit", "10", columns=columns).output
    lines = output.splitlines()
    assert all(cell_len(line) <= columns for line in lines), output
    assert len(lines) == 2 + len(running), output  # title, header, one line per task
    rows = _table(output)
    by_id = {t["id"]: t for t in running}
    assert [row["id"] for row in rows] == [t["id"] for t in running]  # ids never cut
    for row in rows:
        task = by_id[row["id"]]
        assert row["status"] == task["status"]
        assert _whole_or_cut(row["name"], task["name"]), row
        if "progress" in row:
            shown = "-" if task["progress"] is None else f"42% {MESSAGE}"
            assert _whole_or_cut(row["progress"], shown), row
    headers = set(rows[0])
    if columns >= 80:
        assert {"id", "name", "status", "progress"} <= headers
    if columns >= 120:
        assert {"queue", "attempts", "updated"} <= headers


def test_the_progress_column_shows_the_attempt_s_progress(
    manager: DevServer, running: list[dict[str, Any]]
) -> None:
    rows = _table(_cli(manager, "tasks", "--limit", "10", columns=200).output)
    shown = {row["id"]: row["progress"] for row in rows}
    for task in running:
        expected = f"42% {MESSAGE}" if task["name"] == LONG else "-"
        assert shown[task["id"]] == expected


@pytest.mark.parametrize("columns", [60, 80])
def test_the_no_worker_warning_wraps_between_words(
    manager: DevServer, running: list[dict[str, Any]], columns: int
) -> None:
    output = _cli(manager, "queues", columns=columns).output
    assert all(cell_len(line) <= columns for line in output.splitlines()), output
    words = " ".join(output.split())
    assert "1 task(s) that no live worker can run (add)" in words
    for word in ("task(s)", "live", "worker", "(add)"):
        assert word in output.split(), output  # each word whole on some line


def test_a_narrow_column_is_cut_never_folded() -> None:
    columns = [Column("id", 0), Column("name", 1, shrink_to=4), Column("extra", 2)]
    rows = [["a" * 10, "b" * 20, "c" * 30]]
    assert widths(columns, rows, 80) == [10, 20, 30]
    assert widths(columns, rows, 40) == [10, 20, 0]  # the lowest rank left out
    assert widths(columns, rows, 20) == [10, 8, 0]  # then cut, down to its narrowest
    assert widths(columns, rows, 5) == [10, 0, 0]  # the first column stays, whatever the width
    wide = [Column("id", 0), Column("name", 1, shrink_to=15), Column("x", 2, shrink_to=8)]
    assert widths(wide, rows, 22) == [10, 10, 0]  # the last room, cut below its shrink_to
    assert widths(wide, rows, 20) == [10, 8, 0]
    assert widths(wide, rows, 19) == [10, 0, 0]  # not under 8 cells: left out instead


def _api(server: DevServer, path: str) -> Any:
    return httpx.get(f"{server.url}{path}").json()


def _still(data: Any) -> Any:
    """Without what moves between two reads (renewal times)."""
    if isinstance(data, dict):
        return {k: _still(v) for k, v in data.items() if k not in ("last_seen", "updated_at")}
    if isinstance(data, list):
        return [_still(v) for v in data]
    return data


def test_json_is_exactly_the_api_s_answer(
    manager: DevServer, running: list[dict[str, Any]]
) -> None:
    task_id = next(t["id"] for t in running if t["name"] == LONG)
    for args, path in [
        (["tasks", "--limit", "10"], "/tasks?limit=10"),
        (["queues"], "/queues"),
        (["workers"], "/workers"),
        (["dead-letter", "list"], "/dead-letter?limit=50"),
    ]:
        printed = json.loads(_cli(manager, *args, "--json").output)
        assert _still(printed) == _still(_api(manager, path)), args
    assert set(json.loads(_cli(manager, "queues", "--json").output)) == {"queues"}
    assert set(json.loads(_cli(manager, "workers", "--json").output)) == {"workers"}
    attempt = json.loads(_cli(manager, "logs", task_id, "--json").output)
    assert _still(attempt) == _still(_api(manager, f"/tasks/{task_id}")["attempts"][-1])
    status = json.loads(_cli(manager, "status", task_id).output)
    assert _still(status) == _still(_api(manager, f"/tasks/{task_id}"))


def test_a_422_is_one_line_per_problem(manager: DevServer, tmp_path: Path) -> None:
    expected = [
        "jobbers: kwargs.y: missing keyword argument 'y' of task 'add'",
        "jobbers: kwargs.x: keyword argument 'x' of task 'add': expected number",
    ]
    over_http = runner.invoke(
        app, ["submit", "add", "--kwargs", '{"x": "a"}', "--url", manager.url]
    )
    assert over_http.exit_code == 1
    assert over_http.output.splitlines() == expected
    store = f"sqlite:///{tmp_path / 'direct.db'}"
    direct = runner.invoke(app, ["submit", "add", "--kwargs", '{"x": "a"}', "--store", store])
    assert direct.exit_code == 1
    assert direct.output.splitlines() == expected


def test_a_problem_s_field_path_is_where_the_caller_put_the_value() -> None:
    detail = [
        {"loc": ["body", "tasks", 0, "kwargs", "x"], "msg": "expected number", "type": "type"},
        {"loc": ["query", "stauts"], "msg": "Extra inputs are not permitted", "type": "x"},
        {"loc": ["body"], "msg": "Field required", "type": "missing"},
    ]
    assert refusal(422, detail).splitlines() == [
        "tasks[0].kwargs.x: expected number",
        "stauts: Extra inputs are not permitted",
        "body: Field required",
    ]
    assert refusal(404, "no task with id ghost") == "404: no task with id ghost"


def test_cancel_prints_the_task_over_http_and_on_a_store(
    manager: DevServer, tmp_path: Path
) -> None:
    with Client(manager.url) as client:
        task_id = client.submit(LONG)["id"]
    over_http = json.loads(_cli(manager, "cancel", task_id).output)
    assert (over_http["id"], over_http["status"]) == (task_id, "cancelled")
    store = f"sqlite:///{tmp_path / 'direct.db'}"
    submitted = runner.invoke(app, ["submit", "sleep", "--id", "c-1", "--store", store])
    assert submitted.exit_code == 0, submitted.output
    direct = runner.invoke(app, ["cancel", "c-1", "--store", store])
    assert direct.exit_code == 0, direct.output
    assert set(json.loads(direct.output)) == set(over_http)
    assert json.loads(direct.output)["status"] == "cancelled"


def _banner_try_line(server: DevServer) -> str:
    deadline = time.monotonic() + 10
    while True:
        for line in server.output().splitlines():
            if line.startswith("try: "):
                return line.removeprefix("try: ")
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)


@pytest.mark.parametrize("given", ["env", "flag"])
def test_the_banner_s_curl_works_pasted_into_a_shell(tmp_path: Path, given: str) -> None:
    token = "pasted-s3cret"
    args, env = (["--token", token], {}) if given == "flag" else ([], {"JOBBERS_API_TOKEN": token})
    server = start_dev(tmp_path, "--grace", "0", *args, env=env)
    try:
        command = _banner_try_line(server)
        assert token not in server.output()  # the banner never prints the secret
        hint = "(set JOBBERS_API_TOKEN to the --token value in that shell)"
        assert (hint in server.output()) == (given == "flag")
        pasted = subprocess.run(
            ["bash", "-c", f"{command} -s -w '\\n%{{http_code}}'"],
            env={"PATH": "/usr/bin:/bin", "JOBBERS_API_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=30,
        )
        body, code = pasted.stdout.rsplit("\n", 1)
        assert code == "201", pasted
        assert json.loads(body)["name"] == "add"
        unset = subprocess.run(
            ["bash", "-c", f"{command} -s -o /dev/null -w '%{{http_code}}'"],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert unset.stdout == "401"  # the token really is what let the first one in
    finally:
        assert server.stop() == 0, server.output()


def test_the_banner_without_a_token_has_no_auth_header() -> None:
    assert "Authorization" not in try_command("127.0.0.1", 8000, token=False)
    assert '"Authorization: Bearer $JOBBERS_API_TOKEN"' in try_command("h", 1, token=True)
