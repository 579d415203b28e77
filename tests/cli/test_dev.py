"""`jobbers dev` as a user runs it: up fast, runs tasks, stops cleanly; the client against it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobbers import APIError, Client, ManagerUnavailable

from .conftest import DevServer, spare_port, start_dev


def _until(deadline: float, check: Any) -> Any:
    """Poll ``check`` until it returns something truthy or the deadline (monotonic) passes."""
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def test_dev_is_up_within_ten_seconds(dev: DevServer) -> None:
    assert dev.startup < 10.0
    if not dev.store:
        assert (Path(dev.log).parent / "jobbers.db").exists(), "default store is ./jobbers.db"


def test_add_completes_within_a_second(dev: DevServer) -> None:
    response = httpx.post(f"{dev.url}/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})
    accepted = time.monotonic()
    assert response.status_code == 201
    task_id = response.json()["id"]

    def completed() -> dict[str, Any] | None:
        task: dict[str, Any] = httpx.get(f"{dev.url}/tasks/{task_id}").json()
        return task if task["status"] == "completed" else None

    task = _until(accepted + 1.0, completed)
    assert task is not None, httpx.get(f"{dev.url}/tasks/{task_id}").json()
    assert task["result"] == 3
    assert task["attempts"][0]["outcome"] == "completed"


def test_client_round_trip(dev: DevServer) -> None:
    with Client(dev.url) as client:
        assert client.healthz() == {"status": "ok"}
        _, start = client.events(limit=10_000)
        task = client.submit("add", {"x": 20, "y": 22}, id="client-answer")
        assert client.submit("add", {"x": 20, "y": 22}, id="client-answer")["id"] == task["id"]
        done = client.wait(task["id"], timeout=5)
        assert (done["status"], done["result"]) == ("completed", 42)
        assert client.statuses([task["id"], "ghost"]) == {task["id"]: "completed"}
        events, cursor = client.events(after=start)
        assert [e["status"] for e in events if e["task_id"] == task["id"]] == [
            "submitted",
            "started",
            "completed",
        ]
        assert cursor == events[-1]["cursor"]
        many = client.submit_many([{"name": "add", "kwargs": {"x": i, "y": i}} for i in range(5)])
        assert [client.wait(t["id"])["result"] for t in many] == [0, 2, 4, 6, 8]
        listed = client.list_tasks(name="add", status="completed", limit=3)
        assert len(listed["tasks"]) == 3
        assert listed["cursor"] is not None


def test_client_errors(dev: DevServer) -> None:
    with Client(dev.url) as client:
        with pytest.raises(APIError) as missing:
            client.get("ghost")
        assert missing.value.status_code == 404
        with pytest.raises(APIError) as unknown:
            client.submit("no.such.task")
        assert unknown.value.status_code == 404
        assert "no.such.task" in str(unknown.value.detail)
        with pytest.raises(APIError) as bad:
            client.submit("add", {"x": 1}, max_retries=-1)
        assert bad.value.status_code == 422
    nowhere = Client(f"http://127.0.0.1:{spare_port()}", timeout=2)
    with nowhere, pytest.raises(ManagerUnavailable):
        nowhere.healthz()


def test_cancel_a_running_task(dev: DevServer) -> None:
    with Client(dev.url) as client:
        task = client.submit("sleep", {"seconds": 30})

        def running() -> bool:
            return bool(client.get(task["id"])["status"] == "started")

        assert _until(time.monotonic() + 5, running)
        asked = time.monotonic()
        client.cancel(task["id"])
        done = client.wait(task["id"], timeout=5)
        assert done["status"] == "cancelled"
        assert time.monotonic() - asked < 2.0
        with pytest.raises(APIError) as again:
            client.cancel(task["id"])
        assert again.value.status_code == 409


def test_cli_submit_and_status_through_the_manager(dev: DevServer) -> None:
    from typer.testing import CliRunner

    from jobbers.cli import app

    runner = CliRunner()
    submitted = runner.invoke(
        app, ["submit", "add", "--kwargs", '{"x": 2, "y": 3}', "--url", dev.url, "--id", "cli-1"]
    )
    assert submitted.exit_code == 0, submitted.output
    with Client(dev.url) as client:
        assert client.wait("cli-1")["result"] == 5
    shown = runner.invoke(app, ["status", "cli-1", "--url", dev.url])
    assert shown.exit_code == 0
    assert '"result": 5' in shown.output


def test_sigterm_hands_back_and_exits_zero(tmp_path: Path) -> None:
    server = start_dev(tmp_path, "--grace", "0.2")
    with Client(server.url) as client:
        task = client.submit("sleep", {"seconds": 30})
        assert _until(time.monotonic() + 5, lambda: client.get(task["id"])["status"] == "started")
    assert server.stop(timeout=15) == 0
    restarted = start_dev(tmp_path, "--grace", "0.2")
    try:
        with Client(restarted.url) as client:
            status = client.get(task["id"])
        assert status["status"] in ("submitted", "started")
        assert status["attempts"][0]["outcome"] == "handed_back"
    finally:
        assert restarted.stop() == 0


def test_the_readme_example(tmp_path: Path) -> None:
    """A task module in the working directory, served by `jobbers dev --tasks tasks`."""
    (tmp_path / "tasks.py").write_text(
        "from jobbers import task\n\n\n"
        '@task(name="greet", max_retries=3, backoff="exponential")\n'
        "async def greet(name: str) -> str:\n"
        '    return f"Hello, {name}!"\n'
    )
    server = start_dev(tmp_path, "--tasks", "tasks")
    try:
        body = {"name": "greet", "kwargs": {"name": "Ada"}, "id": "greet-ada"}
        assert httpx.post(f"{server.url}/tasks", json=body).status_code == 201
        assert httpx.post(f"{server.url}/tasks", json=body).status_code == 200
        with Client(server.url) as client:
            done = client.wait("greet-ada", timeout=5)
        assert (done["status"], done["result"], done["max_retries"]) == (
            "completed",
            "Hello, Ada!",
            3,
        )
        assert httpx.post(f"{server.url}/tasks", json={"name": "add"}).status_code == 404
    finally:
        assert server.stop() == 0
