"""``--log-format json``: every line a Manager and worker write is one JSON object, and each task
lifecycle line names the task, its queue, attempt and worker as fields."""

from __future__ import annotations

import json
from pathlib import Path

from jobbers import Client

from .conftest import start_dev


def test_json_log_lines_carry_the_task_fields(tmp_path: Path) -> None:
    server = start_dev(tmp_path, "--log-format", "json", "--grace", "1")
    try:
        with Client(server.url) as client:
            done = client.wait(client.submit("add", {"x": 1, "y": 2})["id"], timeout=10)
            failed = client.wait(client.submit("fail", {"message": "nope"})["id"], timeout=10)
    finally:
        assert server.stop() == 0, server.output()
    lines = [line for line in server.output().splitlines() if line.strip()]
    banner = ("jobbers dev:", "try: ")  # printed by the command before logging starts
    entries = [json.loads(line) for line in lines if not line.startswith(banner)]
    assert entries
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    lifecycle = [e for e in entries if e.get("task_id") in (done["id"], failed["id"])]
    by_task = {(e["task_id"], e["message"].split(" ")[0]) for e in lifecycle}
    assert {(done["id"], "claimed"), (done["id"], "completed")} <= by_task
    assert any(t == failed["id"] and w in ("failed", "dead") for t, w in by_task)
    for entry in lifecycle:
        assert entry["queue"] == "default"
        assert entry["attempt"] == 1 if entry["task_id"] == done["id"] else entry["attempt"] >= 1
        assert entry["worker"]
        assert entry["task_name"] in ("add", "fail")
    assert any(e["logger"].startswith("uvicorn") for e in entries)


def test_text_lines_name_the_queue(tmp_path: Path) -> None:
    server = start_dev(tmp_path, "--grace", "1")
    try:
        with Client(server.url) as client:
            task = client.wait(client.submit("add", {"x": 1, "y": 2})["id"], timeout=10)
    finally:
        assert server.stop() == 0
    assert f"completed task {task['id']} add queue default attempt 1 on worker" in server.output()
