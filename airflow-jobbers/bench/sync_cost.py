"""What one ``JobbersExecutor.sync()`` costs the scheduler loop with many jobs in flight.

    airflow-jobbers/bench/sync_cost.py [--in-flight 1000,10000] [--changing 100] [--rounds 100]

Run with the Airflow virtualenv's Python (``scripts/ensure-venv.sh`` prints it). For each size:
a fresh Jobbers Manager on a spare port and a fresh SQLite store; that many runner jobs
submitted and tracked by a real executor; then, per round, ``--changing`` more are submitted
(untimed), as many are claimed and completed straight in the store (as a worker would: two
events each), so that the number in flight stays the same, and ``sync()`` is timed, with
``sync_interval`` 0 so that every timed ``sync()`` reads the feed (between reads, at most
every ``sync_interval`` seconds, a ``sync()`` costs nothing). The sizes are set up side by side
and their rounds interleaved, in alternating order, so that a machine whose speed drifts slows
both sizes alike. ``sync()`` reads the change feed from its cursor, so its cost follows the
number of changes, not of jobs in flight. The periodic bulk reconciliation is off (it is a
safety net every ``reconcile_interval`` seconds, not part of a heartbeat's cost). A benchmark,
not a test.
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


class Sitting:
    """One size: a fresh Jobbers Manager on a spare port, a fresh SQLite store, ``in_flight``
    runner jobs submitted and tracked by a real executor."""

    def __init__(self, in_flight: int, changing: int) -> None:
        from jobbers.store.sqlite import SQLiteStore

        from airflow_jobbers.scheduler.executor import JobbersExecutor

        self.in_flight = in_flight
        self.changing = changing
        self.work = Path(tempfile.mkdtemp(prefix="jobbers-sync-bench-"))
        self.manager, url = start_manager(
            self.work / "jobbers.db", self.work / "manager.log", 60, "--log-level", "WARNING"
        )
        os.environ["AIRFLOW__JOBBERS__MANAGER_URL"] = url
        os.environ["AIRFLOW__JOBBERS__RECONCILE_INTERVAL"] = "0"
        # Every timed sync() reads the feed (the interval between reads is not what is measured).
        os.environ["AIRFLOW__JOBBERS__SYNC_INTERVAL"] = "0"
        # With 10,000 in flight every slot is taken: a sync() would then wait for an end, and
        # the wait is idle time, not what sync() costs.
        os.environ["AIRFLOW__JOBBERS__FULL_WAIT"] = "0"
        self.store = SQLiteStore(str(self.work / "jobbers.db"))
        self.executor = JobbersExecutor()  # reads its options now: one per size can coexist
        self.tracked = 0
        self.submit(in_flight)
        self.executor.start()  # the change feed starts after the submissions

    def submit(self, count: int) -> None:
        """Submit ``count`` runner jobs and have the executor track them."""
        from airflow.models.taskinstancekey import TaskInstanceKey

        from airflow_jobbers import protocol
        from airflow_jobbers.scheduler.submission import Submission

        client = self.executor._get_client()
        workload = {"type": "ExecuteTask", "token": "x.y.z", "ti": {"id": "bench"}}
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
            key = TaskInstanceKey("bench", f"t{self.tracked}", "run", 1, -1)
            self.executor._accepted(Submission(key, job_id, {}, preassigned=True))
            self.tracked += 1

    def round(self) -> float:
        """Seconds of one timed ``sync()`` that reads ``changing`` jobs' ends."""
        from jobbers.models import Outcome
        from jobbers.store.base import Report

        # Replace the jobs that end this round first: ``in_flight`` stay in flight throughout.
        self.submit(self.changing)
        self.executor.sync()  # their submissions are not what is timed

        async def change() -> None:
            claimed = await self.store.claim("bench-worker", ["default"], self.changing, 60.0)
            reports = [Report(r.id, r.attempt, Outcome("completed", result={})) for r in claimed]
            await self.store.finish("bench-worker", reports)

        asyncio.run(change())
        started = time.perf_counter()
        self.executor.sync()
        elapsed = time.perf_counter() - started
        reported = self.executor.get_event_buffer()
        assert len(reported) == self.changing, f"{len(reported)} events, not {self.changing}"
        assert len(self.executor._jobs) == self.in_flight, len(self.executor._jobs)
        return elapsed

    def close(self) -> None:
        self.executor.terminate()
        asyncio.run(self.store.close())
        stop(self.manager)
        shutil.rmtree(self.work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--in-flight", default="1000,10000")
    parser.add_argument("--changing", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    sizes = [int(s) for s in args.in_flight.split(",")]
    print(
        f"sync() with {args.changing} jobs changing per heartbeat ({args.rounds} rounds,"
        " the sizes' rounds interleaved)"
    )
    sittings: list[Sitting] = []
    try:
        for size in sizes:
            sittings.append(Sitting(size, args.changing))
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        for number in range(args.rounds):
            # Alternate which size goes first, so that neither always follows the other.
            for sitting in sittings if number % 2 == 0 else sittings[::-1]:
                timings[sitting.in_flight].append(sitting.round())
    finally:
        for sitting in sittings:
            sitting.close()
    print(f"{'in flight':>10} {'median':>9} {'p95':>9} {'max':>9}")
    for size in sizes:
        ordered = sorted(timings[size])
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"{size:>10} {statistics.median(ordered) * 1000:>7.2f}ms {p95 * 1000:>7.2f}ms "
            f"{ordered[-1] * 1000:>7.2f}ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
