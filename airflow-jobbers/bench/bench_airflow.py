"""Benchmark: Airflow 3.3.2 on Jobbers, DESIGN.md's DAG (start -> 200 leaves -> collect ->
finish), PostgreSQL metadata DB, parallelism 32. Prints seconds from the run being queued to
its end, the number DESIGN.md compares with LocalExecutor's 52.6 s on the same machine.

    .venv/bin/python airflow-jobbers/bench/bench_airflow.py [--workers 2] [--concurrency 8]

Uses the e2e harness (same processes, ports and cached venv); not part of the test suite.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    venv = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix="airflow-jobbers-bench-"))
    with postgres_database() as db:
        stack = Stack(venv=venv, work=work, db_name=db)
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
        finally:
            stack.stop_all()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
