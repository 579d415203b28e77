"""The side-by-side benchmark's DAG: start -> N leaves -> collect -> finish.

N comes from ``JOBBERS_BENCH_N`` (default 200), so the file holds one DAG and every task
process parses only that one, under every executor alike.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

N = int(os.environ.get("JOBBERS_BENCH_N", "200"))

with DAG(
    f"bench_fanout_{N}",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_tasks=64,
):

    @task
    def bench_start() -> int:
        return 0

    @task
    def bench_leaf() -> None:
        return None

    @task
    def bench_collect() -> None:
        return None

    @task
    def bench_finish() -> None:
        return None

    first = bench_start()
    leaves = [bench_leaf.override(task_id=f"leaf_{i:04d}")() for i in range(N)]
    first >> leaves
    leaves >> bench_collect() >> bench_finish()
