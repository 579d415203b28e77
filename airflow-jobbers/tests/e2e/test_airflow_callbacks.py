"""Executor callbacks (Airflow 3.2+): a missed DAG deadline's SyncCallback runs on Jobbers."""

from __future__ import annotations

from airflow_harness import Stack, wait_for


def test_deadline_callback_runs_on_jobbers(stack: Stack) -> None:
    run_id = stack.trigger("jobbers_deadline", {"sleep": 20})
    lines = wait_for(lambda: stack.marker_lines("deadline"), 120, "the deadline callback to run")
    assert len(lines) == 1
    rows = wait_for(
        lambda: [
            r for r in stack.sql("select state from callback") if r[0] in ("success", "failed")
        ],
        60,
        "the Callback row to end",
    )
    assert rows == [["success"]], rows
    jobs = [j for j in stack.runner_jobs() if j["kwargs"]["workload"]["type"] == "ExecuteCallback"]
    assert len(jobs) == 1
    assert stack.wait_job(jobs[0]["id"])["status"] == "completed"
    assert stack.wait_run("jobbers_deadline", run_id, timeout=120) == "success"
