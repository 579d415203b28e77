"""Jobbers' drain: throughput and run latency with real worker processes.

    .venv/bin/python bench/core.py [--tasks 5000] [--workers 1,2] [--concurrency 50]
                                   [--stores sqlite,redis]

Submits no-op tasks in bulk to a fresh store (a SQLite file; with ``redis``, a private
``redis-server`` on a spare port, emptied between cases and stopped by PID), starts N
``jobbers worker`` processes, and waits (bounded) until every task is completed. Prints a
table; numbers depend on the machine, so compare rows from one run, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobbers.ids import uuid7
from jobbers.models import NewTask, Status, TaskFilter
from jobbers.store import open_store
from jobbers.store.base import Store

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import PrivateRedis  # the private redis-server bench/peers.py uses

DEADLINE = 300.0


async def run_case(
    tasks: int, workers: int, concurrency: int, kind: str, url: str
) -> dict[str, float]:
    store = open_store(url)
    name, kwargs = ("sleep", {"seconds": 0}) if kind == "async" else ("add", {"x": 1, "y": 2})
    await store.submit([NewTask(uuid7(), name, kwargs) for _ in range(tasks)])
    started = time.perf_counter()
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the clock matters
            [
                sys.executable,
                "-m",
                "jobbers",
                "worker",
                "--store",
                url,
                "--tasks",
                "jobbers.examples",
                "--concurrency",
                str(concurrency),
                "--log-level",
                "WARNING",
            ]
        )
        for _ in range(workers)
    ]
    try:
        elapsed = await wait_all_done(store, tasks, started)
        latencies = await latencies_ms(store, tasks)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        await store.close()
    return {
        "elapsed": elapsed,
        "rate": tasks / elapsed,
        "p50": statistics.median(latencies),
        "p99": statistics.quantiles(latencies, n=100)[98],
    }


async def wait_all_done(store: Store, tasks: int, started: float) -> float:
    while time.perf_counter() - started < DEADLINE:
        stats = await store.queue_stats()
        if not any(s.depth or s.running or s.scheduled for s in stats):
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{tasks} tasks not done within {DEADLINE} s")


async def latencies_ms(store: Store, tasks: int) -> list[float]:
    """Claim-to-finish per task, from the store's own timestamps."""
    out: list[float] = []
    cursor = None
    while True:
        page = await store.query(TaskFilter(status=Status.COMPLETED), 1000, cursor)
        out.extend(
            (t.finished_at - t.started_at) * 1000
            for t in page.tasks
            if t.finished_at and t.started_at
        )
        if page.cursor is None:
            return out
        cursor = page.cursor


def store_url(backend: str, name: str, folder: Path, redis: PrivateRedis | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'bench-{name}.db'}"
    assert redis is not None
    redis.flush()
    return f"{redis.url}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--stores", default="sqlite", help="sqlite, redis or both, comma separated")
    args = parser.parse_args()
    if not 1 <= args.tasks <= 100_000:
        raise SystemExit("--tasks must be between 1 and 100000")
    backends = args.stores.split(",")
    if set(backends) - {"sqlite", "redis"}:
        raise SystemExit("--stores takes sqlite and redis")
    rows = []
    redis = PrivateRedis() if "redis" in backends else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in backends:
                for workers in (int(w) for w in args.workers.split(",")):
                    for kind in ("async", "sync"):
                        url = store_url(backend, f"{workers}-{kind}", Path(tmp), redis)
                        result = asyncio.run(
                            run_case(args.tasks, workers, args.concurrency, kind, url)
                        )
                        rows.append((backend, workers, kind, result))
    finally:
        if redis is not None:
            redis.stop()
    print(f"\nJobbers, {args.tasks} no-op tasks, concurrency {args.concurrency}/worker,")
    print(f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}\n")
    print("| store  | workers | task  | total s | tasks/s | run p50 ms | run p99 ms |")
    print("|--------|--------:|-------|--------:|--------:|-----------:|-----------:|")
    for backend, workers, kind, r in rows:
        print(
            f"| {backend:6s} | {workers:7d} | {kind:5s} | {r['elapsed']:7.2f} | {r['rate']:7.0f} |"
            f" {r['p50']:10.1f} | {r['p99']:10.1f} |"
        )


if __name__ == "__main__":
    main()
