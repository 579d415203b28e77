"""The fork server and its protocol, without Airflow: the server runs with a stand-in for
the workload body (``child.run_bytes``) that obeys a one-word command instead."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from airflow_jobbers.worker import runner
from airflow_jobbers.worker.fork_client import ForkServerHandle, run_forked, start_server

T = TypeVar("T")

STUB = """
import os, sys, time
import airflow_jobbers.worker.child as child

def run_bytes(data):
    command = data.decode()
    print(f"pid {os.getpid()}", flush=True)
    if command.startswith("exit:"):
        return int(command[5:])
    if command == "sleep":
        open(os.path.join(os.environ["STUB_MARKERS"], "sleeping"), "w").close()
        time.sleep(60)
    if command == "die":
        os.kill(os.getpid(), 9)
    return 0

child.run_bytes = run_bytes
from airflow_jobbers import protocol
from airflow_jobbers.worker.zygote import ForkServer

server = ForkServer(sys.argv[1])
os.write(1, protocol.FORK_READY + b"\\n")
server.serve_forever()
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> ForkServerHandle:
    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    )
    return ForkServerHandle(argv=(sys.executable, "-c", STUB))


def _run(server: ForkServerHandle, scenario: Coroutine[Any, Any, T]) -> T:
    """Run a scenario and stop the fork server in the same event loop."""

    async def main() -> T:
        try:
            return await scenario
        finally:
            await server.aclose()

    return asyncio.run(main())


def _pid(output: list[str]) -> str:
    return next(line for line in output if line.startswith("pid "))


def test_each_workload_runs_in_its_own_fork_and_its_exit_code_comes_back(
    server: ForkServerHandle,
) -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        return [await run_forked(f"exit:{n}".encode(), 1.0, server) for n in (3, 4, 0)]

    results = _run(server, scenario())
    assert [code for code, _ in results] == [3, 4, 0]
    assert len({_pid(output) for _, output in results}) == 3


def test_a_server_started_with_the_worker_serves_its_first_workload(
    server: ForkServerHandle,
) -> None:
    async def scenario() -> tuple[int | None, int | None, int]:
        await start_server(server)
        assert server._proc is not None
        before = server._proc.pid
        code, _ = await run_forked(b"exit:0", 1.0, server)
        return before, server._proc.pid, code

    before, after, code = _run(server, scenario())
    assert before == after  # the workload found it ready: no second start
    assert code == 0


def test_the_runner_starts_its_fork_server_as_the_worker_starts() -> None:
    from jobbers.registry import worker_start_hooks

    assert runner.start_fork_server in worker_start_hooks()


def test_concurrent_workloads_run_side_by_side(server: ForkServerHandle) -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        return list(await asyncio.gather(*(run_forked(b"exit:0", 1.0, server) for _ in range(3))))

    results = _run(server, scenario())
    assert [code for code, _ in results] == [0, 0, 0]
    assert len({_pid(output) for _, output in results}) == 3


def test_a_cancelled_workload_is_stopped_and_the_server_goes_on(
    server: ForkServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_MARKERS", str(tmp_path))
    sleeping = tmp_path / "sleeping"

    async def scenario() -> tuple[int, list[str]]:
        sleeper = asyncio.create_task(run_forked(b"sleep", 0.5, server))
        for _ in range(600):  # up to 30 s for the server to start and the body to begin
            if sleeping.exists():
                break
            await asyncio.sleep(0.05)
        assert sleeping.exists()
        started = time.monotonic()
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(sleeper, 15)
        assert time.monotonic() - started < 5  # SIGTERM ends it: no SIGKILL wait needed
        return await run_forked(b"exit:5", 1.0, server)

    code, _ = _run(server, scenario())
    assert code == 5


def test_a_workload_process_killed_by_a_signal_reports_it(server: ForkServerHandle) -> None:
    async def scenario() -> list[int]:
        died, _ = await run_forked(b"die", 1.0, server)
        after, _ = await run_forked(b"exit:0", 1.0, server)
        return [died, after]

    died, after = _run(server, scenario())
    assert died == -9
    assert after == 0


DAG_STUB = """
import os, sys
import airflow_jobbers.worker.child as child
from airflow_jobbers import protocol
from airflow_jobbers.worker import dagcache
from airflow_jobbers.worker.dagserver import DagServers
from airflow_jobbers.worker.zygote import ForkServer

WARMED = "nothing"

def run_bytes(data):
    print(f"pid {os.getpid()} parent {os.getppid()} warmed {WARMED}", flush=True)
    return 0

def route(data):
    kind, _, key = data.decode().partition(":")
    return key if kind == "dag" else None

def warm(key):
    global WARMED
    WARMED = f"{key}@{os.getpid()}"
    found = dagcache.stamp(os.path.join(os.environ["STUB_MARKERS"], key))
    return [found] if found else []

child.run_bytes = run_bytes
server = ForkServer(sys.argv[1], DagServers(route, warm, dagcache.fresh))
print(f"zygote {os.getpid()}", file=sys.stderr, flush=True)
os.write(1, protocol.FORK_READY + b"\\n")
server.serve_forever()
"""


def _fields(output: list[str]) -> dict[str, str]:
    words = next(line for line in output if line.startswith("pid ")).split()
    return dict(zip(words[::2], words[1::2], strict=True))


def test_workloads_of_one_dag_file_version_are_forked_by_its_dag_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("STUB_MARKERS", str(tmp_path))
    (tmp_path / "a").write_text("v1")
    (tmp_path / "b").write_text("v1")
    server = ForkServerHandle(argv=(sys.executable, "-c", DAG_STUB))

    async def one(data: bytes) -> dict[str, str]:
        code, output = await run_forked(data, 1.0, server)
        assert code == 0
        return _fields(output)

    async def scenario() -> list[dict[str, str]]:
        runs = [await one(b"dag:a"), await one(b"dag:a"), await one(b"dag:b"), await one(b"x")]
        (tmp_path / "a").write_text("v2, changed")
        runs.append(await one(b"dag:a"))
        return runs

    a1, a2, b, plain, a_changed = _run(server, scenario())
    assert a1["parent"] == a2["parent"]  # one DAG server for file a
    assert a1["warmed"] == a2["warmed"] == f"a@{a1['parent']}"  # it parsed once, before forking
    assert b["parent"] != a1["parent"]
    assert b["warmed"] == f"b@{b['parent']}"
    assert plain["warmed"] == "nothing"  # no route: forked by the fork server itself
    assert plain["parent"] not in (a1["parent"], b["parent"])
    assert a_changed["parent"] != a1["parent"]  # the file changed: a new DAG server parsed it
    assert a_changed["warmed"] == f"a@{a_changed['parent']}"
