"""Benchmark: Airflow 3.3.2 on Jobbers, DESIGN.md's DAG (start -> 200 leaves -> collect ->
finish), PostgreSQL metadata DB, parallelism 32. Prints seconds from the run being queued to
its end, the number DESIGN.md compares with LocalExecutor's 52.6 s on the same machine.

    .venv/bin/python airflow-jobbers/bench/bench_airflow.py [--workers 2] [--concurrency 8]

Uses the e2e harness (same processes, ports and cached venv); not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
sys.path.insert(0, str(HERE.parent / "src"))

from airflow_harness import Stack, ensure_venv, postgres_database  # noqa: E402


def _cpu(pid: int) -> str:
    """utime+stime / cutime+cstime of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "gone"
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    reaped = (int(fields[13]) + int(fields[14])) / tick
    return f"{own:7.1f} / {reaped:7.1f}"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    venv = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix="airflow-jobbers-bench-"))
    with postgres_database() as db:
        # Airflow's defaults for the timers the tests shorten (a 200-task run queues for longer).
        production_timers = {
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "120",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "300",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "5",
            "AIRFLOW__JOBBERS__RECONCILE_INTERVAL": "60",
        }
        stack = Stack(venv=venv, work=work, db_name=db, overrides=production_timers)
        stack.markers.mkdir(parents=True)
        try:
            assert stack.run(stack.bin("airflow"), "db", "migrate").returncode == 0
            stack.start_manager()
            stack.start("dag-processor", stack.bin("airflow"), "dag-processor")
            stack.start_api_server()
            stack.start_scheduler()
            for i in range(args.workers):
                stack.start_worker(f"worker-{i}", "default", args.concurrency, serve_logs=i == 0)
            for _ in range(args.runs):
                run_id = stack.trigger("jobbers_bench_200")
                began = time.monotonic()
                state = stack.wait_run("jobbers_bench_200", run_id, timeout=900)
                wall = time.monotonic() - began
                run = stack.api("GET", f"/dags/jobbers_bench_200/dagRuns/{run_id}")
                queued = datetime.fromisoformat(run["queued_at"])
                ended = datetime.fromisoformat(run["end_date"])
                took = (ended - queued).total_seconds()
                print(
                    f"jobbers_bench_200: {state}; queued->end {took:.1f}s"
                    f" (trigger->observed end {wall:.1f}s; {args.workers} workers x "
                    f"{args.concurrency} slots)",
                    flush=True,
                )
            print("CPU seconds (own / reaped children) per process:")
            for name, proc in stack.procs.items():
                print(f"  {name:<14} {_cpu(proc.pid)}")
                for child in _children(proc.pid):
                    print(f"    child {child:<8} {_cpu(child)}")
        finally:
            stack.stop_all()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
