"""What one ``JobbersExecutor.sync()`` costs the scheduler loop with many jobs in flight.

    airflow-jobbers/bench/sync_cost.py [--in-flight 1000,10000] [--changing 100] [--rounds 100]

Run with the Airflow virtualenv's Python (``scripts/ensure-venv.sh`` prints it). For each size:
a fresh Jobbers Manager on a spare port and a fresh SQLite store; that many runner jobs
submitted and tracked by a real executor; then, per round, ``--changing`` more are submitted
(untimed), as many are claimed and completed straight in the store (as a worker would: two
events each), so that the number in flight stays the same, and ``sync()`` is timed, with
``sync_interval`` 0 so that every timed ``sync()`` reads the feed (between reads, at most
every ``sync_interval`` seconds, a ``sync()`` costs nothing). ``sync()`` reads the
change feed from its cursor, so its cost follows the number of changes, not of jobs in flight.
The periodic bulk reconciliation is off (it is a safety net every ``reconcile_interval``
seconds, not part of a heartbeat's cost). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "unit"))

from manager_proc import start_manager, stop  # noqa: E402


def measure(in_flight: int, changing: int, rounds: int) -> list[float]:
    """Seconds per timed ``sync()``."""
    from airflow.models.taskinstancekey import TaskInstanceKey
    from jobbers.models import Outcome
    from jobbers.store.base import Report
    from jobbers.store.sqlite import SQLiteStore

    from airflow_jobbers import protocol
    from airflow_jobbers.executor import JobbersExecutor
    from airflow_jobbers.submission import Submission

    work = Path(tempfile.mkdtemp(prefix="jobbers-sync-bench-"))
    manager, url = start_manager(
        work / "jobbers.db", work / "manager.log", 60, "--log-level", "WARNING"
    )
    os.environ["AIRFLOW__JOBBERS__MANAGER_URL"] = url
    os.environ["AIRFLOW__JOBBERS__RECONCILE_INTERVAL"] = "0"
    # Every timed sync() reads the feed (the interval between reads is not what is measured).
    os.environ["AIRFLOW__JOBBERS__SYNC_INTERVAL"] = "0"
    store = SQLiteStore(str(work / "jobbers.db"))
    executor = JobbersExecutor()
    try:
        client = executor._get_client()
        workload = {"type": "ExecuteTask", "token": "x.y.z", "ti": {"id": "bench"}}
        tracked = 0

        def submit(count: int) -> None:
            """Submit ``count`` runner jobs and have the executor track them."""
            nonlocal tracked
            ids = [str(uuid.uuid4()) for _ in range(count)]
            for i in range(0, len(ids), 1000):
                client.submit_many(
                    [
                        {
                            "name": protocol.TASK_NAME,
                            "id": job_id,
                            "kwargs": {protocol.WORKLOAD_KWARG: workload},
                        }
                        for job_id in ids[i : i + 1000]
                    ]
                )
            for job_id in ids:
                key = TaskInstanceKey("bench", f"t{tracked}", "run", 1, -1)
                executor._accepted(Submission(key, job_id, {}, preassigned=True))
                tracked += 1

        submit(in_flight)
        executor.start()  # the change feed starts after the submissions
        timings: list[float] = []
        for _ in range(rounds):
            # Replace the jobs that end this round first: ``in_flight`` stay in flight throughout.
            submit(changing)
            executor.sync()  # their submissions are not what is timed

            async def change() -> None:
                claimed = await store.claim("bench-worker", ["default"], changing, 60.0)
                reports = [
                    Report(r.id, r.attempt, Outcome("completed", result={})) for r in claimed
                ]
                await store.finish("bench-worker", reports)

            asyncio.run(change())
            started = time.perf_counter()
            executor.sync()
            timings.append(time.perf_counter() - started)
            reported = executor.get_event_buffer()
            assert len(reported) == changing, f"{len(reported)} events, not {changing}"
            assert len(executor._jobs) == in_flight, len(executor._jobs)
        return timings
    finally:
        executor.terminate()
        asyncio.run(store.close())
        stop(manager)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--in-flight", default="1000,10000")
    parser.add_argument("--changing", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    print(f"sync() with {args.changing} jobs changing per heartbeat ({args.rounds} rounds)")
    print(f"{'in flight':>10} {'median':>9} {'p95':>9} {'max':>9}")
    for size in (int(s) for s in args.in_flight.split(",")):
        timings = sorted(measure(size, args.changing, args.rounds))
        p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
        print(
            f"{size:>10} {statistics.median(timings) * 1000:>7.2f}ms {p95 * 1000:>7.2f}ms "
            f"{timings[-1] * 1000:>7.2f}ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
