"""What every harness shares: the four scenarios, timed the same way for every system.

Standard library only: each harness runs in its own virtualenv (the peer's), and imports this file
by path. A harness defines a ``Peer`` with ``enqueue()``, ``enqueue_many(n)``, ``done(ids)``,
``round_trip()`` and ``worker_command()``; :func:`main` runs one scenario and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any, Protocol

#: No scenario may take longer than this; the orchestrator reports a timeout.
SCENARIO_DEADLINE = 150.0
POLL = 0.02


class Peer(Protocol):
    async def enqueue(self) -> str: ...

    async def enqueue_many(self, n: int) -> list[str]: ...

    async def done(self, ids: list[str]) -> int: ...

    async def round_trip(self) -> None: ...

    def worker_command(self) -> list[str]: ...

    async def close(self) -> None: ...


def start_worker(peer: Peer) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        peer.worker_command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.abspath(sys.argv[0])),
    )


def stop_worker(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then SIGKILL after 10 s; the worker's peak RSS in MiB (from wait4)."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = status
            return usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return usage.ru_maxrss / 1024
        time.sleep(0.02)


async def enqueue_one(peer: Peer, n: int) -> dict[str, Any]:
    await peer.enqueue()  # warm up (connections, first-use setup), as the round trip does
    started = time.perf_counter()
    for _ in range(n):
        await peer.enqueue()
    return {"rate": n / (time.perf_counter() - started)}


async def enqueue_bulk(peer: Peer, n: int) -> dict[str, Any]:
    await peer.enqueue()  # warm up (connections, first-use setup), as the round trip does
    started = time.perf_counter()
    await peer.enqueue_many(n)
    return {"rate": n / (time.perf_counter() - started)}


async def drain(peer: Peer, n: int) -> dict[str, Any]:
    """Tasks per second from the first completion seen to the last (worker start-up excluded);
    the bulk enqueue that fills the queue is timed too."""
    started = time.perf_counter()
    ids = await peer.enqueue_many(n)
    bulk_rate = n / (time.perf_counter() - started)
    proc = start_worker(peer)
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + SCENARIO_DEADLINE
        while True:
            count = await peer.done(ids)
            now = time.perf_counter()
            if count and first is None:
                first = (now, count)
            if count >= n:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"drain stopped at {count}/{n} (worker exit {proc.poll()})")
            await asyncio.sleep(POLL)
    finally:
        rss = stop_worker(proc) if proc.poll() is None else 0.0
    assert first is not None
    elapsed = max(now - first[0], 1e-6)
    return {"rate": (n - first[1]) / elapsed, "rss_mb": rss, "bulk_rate": bulk_rate}


async def round_trip(peer: Peer, n: int) -> dict[str, Any]:
    proc = start_worker(peer)
    try:
        deadline = time.monotonic() + SCENARIO_DEADLINE
        for _ in range(10):  # warm up: the worker is up and connected
            await asyncio.wait_for(peer.round_trip(), max(1.0, deadline - time.monotonic()))
        latencies = []
        for _ in range(n):
            started = time.perf_counter()
            await peer.round_trip()
            latencies.append((time.perf_counter() - started) * 1000)
            if time.monotonic() > deadline:
                raise RuntimeError("round trips took too long")
    finally:
        stop_worker(proc)
    return {
        "p50": statistics.median(latencies),
        "p99": statistics.quantiles(latencies, n=100)[98],
    }


SCENARIOS = {
    "enqueue_one": enqueue_one,
    "enqueue_bulk": enqueue_bulk,
    "drain": drain,
    "round_trip": round_trip,
}


def main(make_peer: Any) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="redis://... or a store URL")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        peer = await make_peer(args.target)
        try:
            result: dict[str, Any] = await SCENARIOS[args.scenario](peer, args.n)
            return result
        finally:
            await peer.close()

    print(json.dumps(asyncio.run(run())))
