"""Jobbers on its embedded store: throughput and run latency with real worker processes.

    .venv/bin/python bench/core.py [--tasks 5000] [--workers 1,2] [--concurrency 50]

Submits no-op tasks in bulk to a fresh SQLite file, starts N ``jobbers worker`` processes,
and waits (bounded) until every task is completed. Prints a table; numbers depend on the
machine, so compare rows from one run, not across machines.
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

DEADLINE = 300.0


async def run_case(
    tasks: int, workers: int, concurrency: int, kind: str, folder: Path
) -> dict[str, float]:
    url = f"sqlite:///{folder / f'bench-{workers}-{kind}.db'}"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    if not 1 <= args.tasks <= 100_000:
        raise SystemExit("--tasks must be between 1 and 100000")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            for kind in ("async", "sync"):
                result = asyncio.run(
                    run_case(args.tasks, workers, args.concurrency, kind, Path(tmp))
                )
                rows.append((workers, kind, result))
    print(f"\nJobbers on SQLite, {args.tasks} no-op tasks, concurrency {args.concurrency}/worker,")
    print(f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}\n")
    print("| workers | task  | total s | tasks/s | run p50 ms | run p99 ms |")
    print("|--------:|-------|--------:|--------:|-----------:|-----------:|")
    for workers, kind, r in rows:
        print(
            f"| {workers:7d} | {kind:5s} | {r['elapsed']:7.2f} | {r['rate']:7.0f} |"
            f" {r['p50']:10.1f} | {r['p99']:10.1f} |"
        )


if __name__ == "__main__":
    main()
