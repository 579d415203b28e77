"""`jobbers manager` and `jobbers worker` as separate processes on one store (each backend), the
way they are deployed: the Manager has no task code and accepts what the worker registered."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from jobbers import APIError, Client

from .conftest import start, start_dev


def test_manager_and_worker_processes(tmp_path: Path, store_url: str) -> None:
    env = {"JOBBERS_STORE_URL": store_url, "JOBBERS_API_TOKEN": "tok-123"}
    manager = start_dev(tmp_path, command="manager", env=env)
    worker = start(tmp_path, "worker", "--tasks", "jobbers.examples", "--concurrency", "2", env=env)
    try:
        assert httpx.get(f"{manager.url}/tasks").status_code == 401
        with Client(manager.url, token="tok-123") as client:
            deadline = time.monotonic() + 10
            while True:  # the Manager knows `add` once the worker has registered it
                try:
                    task = client.submit("add", {"x": 40, "y": 2})
                    break
                except APIError as exc:
                    if exc.status_code != 404:
                        raise
                    assert worker.proc.poll() is None, worker.output()
                    assert time.monotonic() < deadline, worker.output()
                    time.sleep(0.05)
            assert client.wait(task["id"], timeout=5)["result"] == 42
            workers = client._send
            del workers
    finally:
        assert worker.stop() == 0, worker.output()
        assert manager.stop() == 0, manager.output()
    assert "stopped" in worker.output()
