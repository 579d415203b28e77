"""The `jobbers` commands in-process: help everywhere, talking to a store directly, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import jobbers.examples  # noqa: F401  (the names submitted below)
from jobbers.cli import app

COMMANDS = ["dev", "manager", "worker", "submit", "status", "cancel"]
runner = CliRunner()


def test_top_level_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--store" in result.output
    assert "JOBBERS_STORE_URL" in result.output


def test_submit_status_cancel_on_a_store(store_url: str) -> None:
    store = store_url
    submitted = runner.invoke(
        app, ["submit", "sleep", "--kwargs", '{"seconds": 5}', "--id", "t-1", "--store", store]
    )
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.output)["status"] == "submitted"
    shown = runner.invoke(app, ["status", "t-1"], env={"JOBBERS_STORE_URL": store})
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["kwargs"] == {"seconds": 5}
    assert json.loads(shown.output)["progress"] is None
    cancelled = runner.invoke(app, ["cancel", "t-1", "--store", store])
    assert cancelled.exit_code == 0, cancelled.output
    task = json.loads(cancelled.output)
    assert (task["id"], task["status"]) == ("t-1", "cancelled")  # the task, as over HTTP
    again = runner.invoke(app, ["cancel", "t-1", "--store", store])
    assert again.exit_code == 1
    assert "409" in again.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["submit", "add", "--kwargs", "{x"], 2, "not valid JSON"),
        (["submit", "add", "--kwargs", "[1]"], 2, "JSON object"),
        (["submit", "no.such.task"], 1, "unknown task name"),
        (["submit", "add", "--id", "bad id"], 2, "id"),
        (["status", "ghost"], 1, "no task with id"),
        (["status", "."], 2, "cannot be a task id"),
        (["status", ".."], 2, "cannot be a task id"),
        (["cancel", "."], 2, "cannot be a task id"),
        (["submit", "add", "--id", ".."], 2, "cannot be a task id"),
        (["worker", "--tasks", "no_such_module_xyz"], 1, "cannot import task module"),
        (["worker", "--tasks", "jobbers.examples", "--queues", ","], 1, "queue"),
        (["manager", "--store", "mongodb://x"], 1, "unsupported store URL"),
    ],
)
def test_errors_are_clear(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}"] if "--store" not in args else []
    result = runner.invoke(app, [*args, *store])
    assert result.exit_code == code, result.output
    assert message in result.output


def test_unreachable_manager_is_reported() -> None:
    from .conftest import spare_port

    result = runner.invoke(app, ["status", "x", "--url", f"http://127.0.0.1:{spare_port()}"])
    assert result.exit_code == 1
    assert "cannot reach the Manager" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("jobbers ")


@pytest.mark.parametrize("command", ["dev", "manager", "worker"])
def test_every_option_of_a_process_is_also_an_environment_variable(command: str) -> None:
    """One way to configure: each flag has its JOBBERS_* variable, read by the same option."""
    options = [p for p in _params(command) if p.param_type_name == "option"]
    missing = [o.name for o in options if o.name != "help" and not o.envvar]
    assert missing == []
    assert all(str(o.envvar).startswith("JOBBERS_") for o in options if o.envvar)


def test_worker_defaults_are_the_worker_settings_defaults() -> None:
    from jobbers.worker import WorkerSettings

    defaults = {p.name: p.default for p in _params("worker")}
    settings = WorkerSettings()
    assert defaults["concurrency"] == settings.concurrency
    assert defaults["grace"] == settings.shutdown_grace
    assert defaults["lease"] == settings.lease
    assert defaults["retention"] == settings.retention
    assert defaults["max_result_bytes"] == settings.max_result_bytes


def test_the_result_cap_reaches_the_worker_from_flag_and_environment(tmp_path: Path) -> None:
    """A bad value is refused by the same option whichever way it came."""
    for args, env in (
        (["--max-result-bytes", "0"], {}),
        ([], {"JOBBERS_MAX_RESULT_BYTES": "0"}),
    ):
        result = runner.invoke(
            app,
            ["worker", "--tasks", "jobbers.examples", *args, "--store", f"sqlite:///{tmp_path}/x"],
            env=env,
        )
        assert result.exit_code == 2
        assert "max-result-bytes" in result.output


def _params(command: str) -> list[Any]:
    import typer.main

    group: Any = typer.main.get_command(app)
    return list(group.commands[command].params)
