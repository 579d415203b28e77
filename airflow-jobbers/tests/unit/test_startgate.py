"""``[jobbers] max_starting``: a worker admits a few task-instance starts at a time, each slot
freed by the workload process's marker line (or its end, or a timeout)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_jobbers.worker import runner, startgate
from airflow_jobbers.worker.fork_client import ForkServerHandle, run_forked
from airflow_jobbers.worker.startgate import STARTED_LINE, StartGate, StartWatch

DEADLINE = 30.0


def test_a_slot_freed_by_the_marker_admits_the_next_start_before_the_first_ends() -> None:
    async def scenario() -> list[str]:
        gate = StartGate(2)
        order: list[str] = []
        first_started = asyncio.Event()
        let_first_end = asyncio.Event()

        async def workload(name: str, hold: asyncio.Event | None) -> None:
            async with gate.slot() as free:
                order.append(f"{name} in")
                watch = StartWatch(free)
                if name == "a":
                    assert watch.seen(b"log line") is False  # not the marker: slot kept
                    assert watch.seen(STARTED_LINE + b"\n")
                    assert watch.after is not None
                    first_started.set()
                if hold is not None:
                    await hold.wait()
                order.append(f"{name} out")

        never = asyncio.Event()
        a = asyncio.create_task(workload("a", let_first_end))
        b = asyncio.create_task(workload("b", never))
        await asyncio.wait_for(first_started.wait(), DEADLINE)
        assert gate.starting == 1  # a is past its start; b still starting
        await asyncio.wait_for(workload("c", None), DEADLINE)  # admitted while a still runs
        assert "a out" not in order
        let_first_end.set()
        await asyncio.wait_for(a, DEADLINE)
        b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await b
        assert gate.starting == 0
        return order

    assert asyncio.run(scenario()) == ["a in", "b in", "c in", "c out", "a out"]


def test_without_a_marker_the_slot_is_held_until_the_timeout() -> None:
    async def scenario() -> None:
        gate = StartGate(1, timeout=0.2)
        entered = asyncio.Event()
        release = asyncio.Event()

        async def silent() -> None:
            async with gate.slot():
                entered.set()
                await release.wait()

        holder = asyncio.create_task(silent())
        await asyncio.wait_for(entered.wait(), DEADLINE)
        assert gate.starting == 1
        # The next start waits for the timeout, not for the silent workload to end.
        async with asyncio.timeout(DEADLINE):
            async with gate.slot():
                assert not holder.done()
        release.set()
        await holder

    asyncio.run(scenario())


def test_gate_zero_admits_everyone_and_gates_are_per_loop() -> None:
    async def scenario() -> tuple[StartGate, StartGate]:
        free_for_all = startgate.gate(0)
        async with free_for_all.slot(), free_for_all.slot(), free_for_all.slot():
            pass
        return startgate.gate(3), startgate.gate(3)

    first, same = asyncio.run(scenario())
    assert first is same
    again, _ = asyncio.run(scenario())
    assert again is not first  # a new event loop gets its own semaphore


MARKER_STUB = """
import os, sys, time
import airflow_jobbers.worker.child as child
from airflow_jobbers import protocol
from airflow_jobbers.worker import startgate
from airflow_jobbers.worker.zygote import ForkServer

def run_bytes(data):
    print("before start", flush=True)
    startgate.write_marker()
    print("after start", flush=True)
    go_on = os.path.join(os.environ["STUB_MARKERS"], "go-on")
    deadline = time.monotonic() + 30
    while not os.path.exists(go_on) and time.monotonic() < deadline:
        time.sleep(0.01)
    return 0 if os.path.exists(go_on) else 9

child.run_bytes = run_bytes
server = ForkServer(sys.argv[1])
os.write(1, protocol.FORK_READY + b"\\n")
server.serve_forever()
"""


def _with_src(monkeypatch: pytest.MonkeyPatch) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    )


def test_a_forked_workload_frees_its_slot_when_it_writes_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_src(monkeypatch)
    monkeypatch.setenv("STUB_MARKERS", str(tmp_path))
    server = ForkServerHandle(argv=(sys.executable, "-c", MARKER_STUB))

    async def scenario() -> tuple[int, list[str], StartWatch]:
        freed = asyncio.Event()
        watch = StartWatch(freed.set)
        running = asyncio.create_task(run_forked(b"go", 1.0, server, watch=watch))
        try:
            await asyncio.wait_for(freed.wait(), DEADLINE)  # while the workload still runs
            assert not running.done()
            (tmp_path / "go-on").touch()
            code, output = await asyncio.wait_for(running, DEADLINE)
        finally:
            await server.aclose()
        return code, output, watch

    code, output, watch = asyncio.run(scenario())
    assert code == 0
    assert output == ["before start", "after start"]  # the marker is not workload output
    assert watch.after is not None
    assert watch.after >= 0


def test_a_plain_child_frees_its_slot_on_the_marker_too(tmp_path: Path) -> None:
    script = f"import sys, os\nos.write(1, b'x\\n' + {STARTED_LINE!r} + b'\\n')\nsys.stdin.read()\n"

    async def scenario() -> tuple[int, list[str], StartWatch]:
        freed = asyncio.Event()
        watch = StartWatch(freed.set)
        code, output = await runner.run_child(
            b"", argv=(sys.executable, "-c", script), grace=1.0, watch=watch
        )
        assert freed.is_set()
        return code, output, watch

    code, output, watch = asyncio.run(scenario())
    assert (code, output) == (0, ["x"])
    assert watch.after is not None


def test_the_execution_api_clients_start_writes_the_marker_after_it_returns_or_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = pytest.importorskip("airflow.sdk.api.client")
    calls: list[str] = []

    def original(self: Any, id: Any, pid: int, when: Any) -> str:
        calls.append(f"start {id}")
        if id == "bad":
            raise RuntimeError("409")
        return "context"

    monkeypatch.setattr(client.TaskInstanceOperations, "start", original)
    assert startgate.install_marker(lambda: calls.append("marker"))
    assert startgate.install_marker(lambda: calls.append("second"))  # once per process
    ops = client.TaskInstanceOperations.__new__(client.TaskInstanceOperations)
    assert ops.start("ok", 1, None) == "context"
    with pytest.raises(RuntimeError):
        ops.start("bad", 1, None)
    assert calls == ["start ok", "marker", "start bad", "marker"]
