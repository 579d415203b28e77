"""Fixtures that start real worker processes (``python -m jobbers worker``) on the test's store
(each backend in turn) and stop them by pid; the test process talks to the same store too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from jobbers.store.base import Store

from .support import new_task, submit, wait_for

REPO = Path(__file__).resolve().parents[2]
TASKS = "tests.worker.tasks_for_tests"


class WorkerProcess:
    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=out)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def registered(self, store: Store, timeout: float = 10.0) -> None:
        """Wait until the worker has registered itself, i.e. it is about to claim."""

        async def seen() -> bool:
            assert self.proc.poll() is None, f"worker exited early:\n{self.output()}"
            return any(f":{self.pid}:" in w.id for w in await store.workers())

        await wait_for(seen, timeout, f"worker {self.pid} to register")


class Spawn(Protocol):
    def __call__(
        self,
        *,
        queues: str = "default",
        concurrency: int = 4,
        lease: float = 1.0,
        grace: float = 5.0,
        poll_cap: float = 0.2,
        maintenance_interval: float = 0.1,
        tasks: str = TASKS,
    ) -> WorkerProcess: ...


async def one_task(
    store: Store, spawn: Spawn, log: Path, name: str, **kwargs: Any
) -> tuple[WorkerProcess, list[str]]:
    """A registered worker and one task for it that records what it does in ``log``."""
    worker = spawn()
    await worker.registered(store)
    return worker, await submit(store, [new_task(name, log=str(log), **kwargs)])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The file the test tasks record what they did in."""
    return tmp_path / "tasks.log"


@pytest.fixture
def spawn(store_url: str, tmp_path: Path) -> Iterator[Spawn]:
    started: list[WorkerProcess] = []

    def start(
        *,
        queues: str = "default",
        concurrency: int = 4,
        lease: float = 1.0,
        grace: float = 5.0,
        poll_cap: float = 0.2,
        maintenance_interval: float = 0.1,
        tasks: str = TASKS,
    ) -> WorkerProcess:
        args = [
            sys.executable,
            "-m",
            "jobbers",
            "worker",
            "--store",
            store_url,
            "--tasks",
            tasks,
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--lease",
            str(lease),
            "--grace",
            str(grace),
            "--poll-cap",
            str(poll_cap),
            "--maintenance-interval",
            str(maintenance_interval),
        ]
        worker = WorkerProcess(args, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)
        # Shown by pytest only when the test failed.
        print(f"--- worker {worker.pid} (exit {worker.proc.returncode}) ---\n{worker.output()}")
