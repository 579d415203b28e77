"""Real worker processes running :mod:`tests.workflows.flow_tasks` on the test's store (each
backend in turn), stopped by pid; and the Manager's app on the same store, in-process."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from jobbers.manager import create_app
from jobbers.store.base import Store

from ..worker.conftest import WorkerProcess
from . import flow_tasks as _tasks  # noqa: F401  (registers the wf.* tasks in this process)

TASKS = "tests.workflows.flow_tasks"


class Spawn(Protocol):
    def __call__(self, *, concurrency: int = 8, lease: float = 1.0) -> WorkerProcess: ...


@pytest.fixture
def spawn(store_url: str, tmp_path: Path) -> Iterator[Spawn]:
    started: list[WorkerProcess] = []

    def start(*, concurrency: int = 8, lease: float = 1.0) -> WorkerProcess:
        args = [
            sys.executable, "-m", "jobbers", "worker", "--store", store_url, "--tasks", TASKS,
            "--concurrency", str(concurrency), "--lease", str(lease), "--grace", "2",
            "--poll-cap", "0.2", "--maintenance-interval", "0.1",
        ]  # fmt: skip
        worker = WorkerProcess(args, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)
        print(f"--- worker {worker.pid} (exit {worker.proc.returncode}) ---\n{worker.output()}")


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as client:
        yield client


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "flow.log"


def lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]
