"""``jobbers schedules`` against a real ``jobbers dev`` process (each store backend), whose worker
fires what the commands add."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner, Result

from jobbers import Client
from jobbers.cli import app

from .conftest import DevServer

runner = CliRunner()


def _cli(server: DevServer, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, [*args, "--url", server.url], env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    return result


def test_add_list_fire_disable_delete(dev: DevServer) -> None:
    added = _cli(
        dev,
        "schedules",
        "add",
        "* * * * * *",
        "add",
        "--kwargs",
        '{"x": 2, "y": 3}',
        "--id",
        "every-second",
    )
    assert added.output.startswith("every-second: next fire ")
    listed = _cli(dev, "schedules").output
    assert "every-second" in listed
    assert "* * * * * *" in listed
    with Client(dev.url) as client:
        deadline = time.monotonic() + 15
        fired: list[str] = []
        while not fired and time.monotonic() < deadline:
            (schedule,) = [s for s in client.schedules() if s["id"] == "every-second"]
            fired = schedule["last_tasks"]
            time.sleep(0.1)
        assert fired, "the dev worker never fired the schedule"
        (task_id,) = fired
        assert task_id.startswith("sched:every-second:")
        assert client.wait(task_id, timeout=10)["result"] == 5
        assert "every-second: disabled" in _cli(dev, "schedules", "disable", "every-second").output
        (schedule,) = json.loads(_cli(dev, "schedules", "--json").output)["schedules"]
        assert (schedule["enabled"], schedule["next_fire"]) == (False, None)
        assert "next fire" in _cli(dev, "schedules", "enable", "every-second").output
        assert "deleted" in _cli(dev, "schedules", "delete", "every-second").output
        assert client.schedules() == []


def test_refusals_name_what_is_wrong(dev: DevServer) -> None:
    bad_cron = _cli(dev, "schedules", "add", "* * *", "add", code=1)
    assert bad_cron.output.startswith("jobbers: cron: ")  # one line per problem, by field
    assert "5 or 6 fields" in bad_cron.output
    unknown = _cli(dev, "schedules", "add", "0 * * * *", "no.such.task", code=1)
    assert "no.such.task" in unknown.output
    missing = _cli(dev, "schedules", "disable", "nope", code=1)
    assert "404" in missing.output
