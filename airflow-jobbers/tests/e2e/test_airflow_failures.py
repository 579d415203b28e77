"""A killed worker, a never-started job, "mark failed"."""

from __future__ import annotations

import os
import time

import pytest
from airflow_harness import Stack, wait_for


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.redis
@pytest.mark.postgres
def test_killed_worker_is_reported_and_the_retry_runs_elsewhere(stack: Stack) -> None:
    """Kill -9 of the worker mid-task: failure reported with a reason, retried well
    before Airflow's heartbeat timeout (300 s here), and the retry succeeds on another worker."""
    # With the DAG parse cache the task runs under a DAG server: it must die with the worker too.
    doomed = stack.start_worker(
        "worker-kill-1",
        "killq",
        concurrency=2,
        lease=5,
        env={"AIRFLOW__JOBBERS__DAG_PARSE_CACHE": "True"},
    )
    run_id = stack.trigger("jobbers_kill", {"sleep": 240})
    ti = stack.wait_ti_state("jobbers_kill", run_id, "long_then_quick", {"running"}, timeout=120)
    first_job_id = stack.ti_rows("jobbers_kill", run_id)["long_then_quick"]["external_executor_id"]
    wait_for(lambda: stack.marker_lines("kill"), 60, "the task body to start")
    task_pid = int(stack.marker_lines("kill")[0].split()[-1])
    first_job = stack.job(first_job_id)
    assert first_job["status"] == "started"
    assert first_job["worker"].split(":")[1] == str(doomed.pid)

    rescuer = stack.start_worker("worker-kill-2", "killq", concurrency=2, lease=5)
    killed_at = time.monotonic()
    stack.crash("worker-kill-1")
    try:
        final = stack.wait_ti_state(
            "jobbers_kill", run_id, "long_then_quick", {"success", "failed"}, timeout=150
        )
        elapsed = time.monotonic() - killed_at
        assert final["state"] == "success"
        assert final["try_number"] == ti["try_number"] + 1
        assert elapsed < 120, f"retry took {elapsed:.0f}s after the kill"

        lost = stack.job(first_job_id)
        assert lost["status"] in ("failed", "dead")
        reason = lost["attempts"][-1]["outcome"]
        assert reason in ("lease_lost", "stalled"), lost["attempts"]

        retry_job_id = stack.ti_rows("jobbers_kill", run_id)["long_then_quick"][
            "external_executor_id"
        ]
        assert retry_job_id != first_job_id
        retry_job = wait_for(
            lambda: (j := stack.job(retry_job_id))["status"] == "completed" and j,
            60,
            "the retry's job to complete",
        )
        assert retry_job["worker"].split(":")[1] == str(rescuer.pid)

        # The executor's failure event carried the reason into the scheduler's audit log.
        logs = stack.api(
            "GET", "/eventLogs", params={"dag_id": "jobbers_kill", "event": "state mismatch"}
        )["event_logs"]
        assert any("Jobbers job" in (entry.get("extra") or "") for entry in logs), logs
        # The killed worker left no task process behind.
        wait_for(lambda: not _pid_alive(task_pid), 30, "the orphaned task process to die")
    finally:
        stack.stop("worker-kill-2")


def test_revoked_job_never_runs_even_when_a_worker_starts(stack: Stack) -> None:
    """No worker, short task_queued_timeout (40 s): revoke_task cancels the job, and
    that job never runs afterwards, even once a worker serves its queue."""
    run_id = stack.trigger("jobbers_noworker")
    stack.wait_ti_state("jobbers_noworker", run_id, "never_started", {"queued"}, timeout=120)
    first_job_id = wait_for(
        lambda: stack.ti_rows("jobbers_noworker", run_id)["never_started"]["external_executor_id"],
        30,
        "the external_executor_id",
    )
    wait_for(lambda: stack.job(first_job_id)["status"] == "submitted", 30, "the job to be queued")
    # task_queued_timeout (40 s) + check interval (5 s): the scheduler revokes it.
    wait_for(
        lambda: stack.job(first_job_id)["status"] == "cancelled",
        120,
        "revoke_task to cancel the job",
    )

    worker = stack.start_worker("worker-nowork", "nowork", concurrency=2)
    try:
        canary = stack.trigger("jobbers_nowork_canary")
        assert stack.wait_run("jobbers_nowork_canary", canary, timeout=180) == "success"
        final = stack.wait_run("jobbers_noworker", run_id, timeout=240)
        revoked = stack.job(first_job_id)
        assert revoked["status"] == "cancelled"
        assert revoked["attempts"] == [], revoked["attempts"]
        row = stack.ti_rows("jobbers_noworker", run_id)["never_started"]
        for job in stack.jobs_for_ti(row["id"]):
            if job["id"] != first_job_id and job["attempts"]:
                assert job["worker"].split(":")[1] == str(worker.pid)
        assert final in ("success", "failed")
    finally:
        stack.stop("worker-nowork")


def test_mark_failed_through_the_api_stops_the_task_on_the_worker(stack: Stack) -> None:
    """PATCH the running task instance to failed: the worker's process stops."""
    run_id = stack.trigger("jobbers_sleep", {"sleep": 300})
    stack.wait_ti_state("jobbers_sleep", run_id, "sleeper", {"running"}, timeout=120)
    job_id = stack.ti_rows("jobbers_sleep", run_id)["sleeper"]["external_executor_id"]
    wait_for(lambda: stack.job(job_id)["status"] == "started", 30, "the job to start")
    # While it runs, its log is readable through Airflow's API (the worker's log server or the
    # shared log folder), and the executor adds where the job runs.
    log_path = f"/dags/jobbers_sleep/dagRuns/{run_id}/taskInstances/sleeper/logs/1"
    running_log = wait_for(
        lambda: "Jobbers job" in str(body := stack.api("GET", log_path)) and body,
        60,
        "the running task's log with the executor's lines",
    )
    assert job_id in str(running_log)
    marked_at = time.monotonic()
    stack.api(
        "PATCH",
        f"/dags/jobbers_sleep/dagRuns/{run_id}/taskInstances/sleeper",
        json={"new_state": "failed"},
    )
    job = wait_for(
        lambda: (j := stack.job(job_id))["status"] in ("completed", "failed") and j,
        90,
        "the job to stop on the worker",
    )
    assert time.monotonic() - marked_at < 90
    assert job["status"] == "completed", job  # the supervisor ended normally (server terminated)
    assert stack.ti("jobbers_sleep", run_id, "sleeper")["state"] == "failed"
    assert stack.wait_run("jobbers_sleep", run_id, timeout=60) == "failed"
    assert stack.api("GET", log_path)["content"]  # and after the end


def test_cancelling_a_running_job_in_jobbers_stops_its_processes(stack: Stack) -> None:
    """Cancellation from Jobbers' side (API, CLI) reaches the running workload: SIGTERM to its
    process group, SIGKILL after the grace period (5 s here); nothing is left running, and the
    executor reports the failure so Airflow fails the task instance at once (no retries here),
    not at the heartbeat timeout."""
    run_id = stack.trigger("jobbers_sleep", {"sleep": 300})
    stack.wait_ti_state("jobbers_sleep", run_id, "sleeper", {"running"}, timeout=120)
    job_id = stack.ti_rows("jobbers_sleep", run_id)["sleeper"]["external_executor_id"]
    line = wait_for(
        lambda: [x for x in stack.marker_lines("sleep") if run_id in x], 60, "the task body"
    )
    task_pid = int(line[0].split()[-1])
    assert _pid_alive(task_pid)
    stack.jobbers("POST", f"/tasks/{job_id}/cancel")
    assert stack.wait_job(job_id, timeout=60)["status"] == "cancelled"
    wait_for(lambda: not _pid_alive(task_pid), 30, "the task process to stop")
    stack.wait_ti_state("jobbers_sleep", run_id, "sleeper", {"failed"}, timeout=90)
    assert stack.wait_run("jobbers_sleep", run_id, timeout=120) == "failed"
    logs = stack.api(
        "GET",
        "/eventLogs",
        params={"dag_id": "jobbers_sleep", "event": "state mismatch", "limit": 1000},
    )
    reasons = [r["extra"] for r in logs["event_logs"] if r.get("run_id") == run_id]
    assert any("cancelled" in (extra or "") for extra in reasons), reasons
