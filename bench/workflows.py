"""Dynamic fan-out and fan-in: one task fans out to N no-op children and a collector.

    .venv/bin/python bench/workflows.py [--children 10000] [--stores sqlite,redis]
                                        [--concurrency 64] [--celery /path/to/python]

Per store (a fresh SQLite file; a private ``redis-server`` on a spare port, stopped by PID),
starts one ``jobbers worker`` process, submits the workflow ``spread -> done`` through the run
API once the worker registered, waits (bounded) until ``done`` completed, then reads the run
back and reports:
the store calls that stored the children (children stored in one transaction or script share
their ``submitted_at``), the collector's start after the last child's end, and the whole
fan-out/fan-in from submission to the collector's end. With ``--celery`` (a Python that has
``celery[redis]``), runs Celery's chord of the same no-op children on a private Redis
(``bench/peers/celery_chord.py``, one ``--pool solo`` worker process, as Jobbers' one worker
process). Figures depend on the machine: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobbers.catalog import TaskCatalog
from jobbers.models import Status
from jobbers.store import open_store
from jobbers.workflows import Workflow, step
from jobbers.workflows.runs import submit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workflow_tasks as tasks
from peers import PrivateRedis

DEADLINE = 300.0
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def _worker(url: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(REPO / "src")])}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "jobbers", "worker", "--store", url),
            *("--tasks", "workflow_tasks", "--concurrency", str(concurrency)),
            *("--poll-cap", "0.2", "--log-level", "WARNING"),
        ],
        env=env,
    )


async def run_case(url: str, children: int, concurrency: int) -> dict[str, Any]:
    store = open_store(url)
    await store.check()
    root = step(tasks.spread, n=children).named("spread")
    root >> step(tasks.done).named("done").inputs("parts")
    worker = _worker(url, concurrency)
    try:
        deadline = time.monotonic() + DEADLINE
        while not await store.workers():  # the worker is up, as Celery's is before its clock
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"{url}: the worker did not start")
            await asyncio.sleep(0.02)
        submitted = time.time()
        graph = Workflow("b", root).graph()
        run, made = await submit(store, TaskCatalog(store), None, graph=graph)
        done_id = made[-1].id
        while (await store.statuses([done_id])).get(done_id) != Status.COMPLETED:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"{url}: the run did not end within {DEADLINE} s")
            await asyncio.sleep(0.02)
    finally:
        worker.terminate()
        worker.wait(30)
    found = await store.run(run.id)
    assert found is not None
    records = found[1]
    leaves = [t for t in records if t.name == "bench.noop"]
    (collector,) = [t for t in records if t.name == "bench.collect"]
    assert len(leaves) == children
    assert collector.result == children
    assert collector.started_at is not None
    assert collector.finished_at is not None
    last_child = max(t.finished_at or 0.0 for t in leaves)
    calls = len({t.submitted_at for t in leaves})
    await store.close()
    return {
        "children": children,
        "store_calls": calls,
        "children_per_call": children / calls,
        "collector_start_s": collector.started_at - last_child,
        "total_s": collector.finished_at - submitted,
        "children_per_s": children / (collector.finished_at - submitted),
    }


def celery_case(python: str, redis_url: str, children: int, deadline: float) -> dict[str, Any]:
    """The peer stops its own worker and reports a chord that missed ``deadline``."""
    found = subprocess.run(
        [python, str(BENCH / "peers" / "celery_chord.py"), redis_url, str(children), str(deadline)],
        capture_output=True,
        text=True,
        timeout=deadline + 120,
        check=True,
    )
    result: dict[str, Any] = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--celery", help="a Python with celery[redis] installed")
    parser.add_argument("--celery-deadline", type=float, default=DEADLINE)
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, Any]]] = []
    for kind in args.stores.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{folder}/bench.db"
                rows.append((kind, asyncio.run(run_case(url, args.children, args.concurrency))))
        else:
            redis = PrivateRedis()
            try:
                url = f"{redis.url}/0"
                rows.append((kind, asyncio.run(run_case(url, args.children, args.concurrency))))
            finally:
                redis.stop()
    if args.celery:
        redis = PrivateRedis()
        try:
            found = celery_case(args.celery, redis.url, args.children, args.celery_deadline)
            rows.append(("celery-chord", found))
        finally:
            redis.stop()
    print("| system | children | store calls | collector start ms | total s | children/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        calls = r.get("store_calls", "-")
        start = r.get("collector_start_s")
        shown = f"{start * 1000:.1f}" if start is not None else "-"
        if r["total_s"] is None:
            total, rate = f"> {r['deadline_s']:.0f}", "-"
        else:
            total, rate = f"{r['total_s']:.2f}", f"{r['children_per_s']:,.0f}"
        print(f"| {name} | {r['children']:,} | {calls} | {shown} | {total} | {rate} |")


if __name__ == "__main__":
    main()
