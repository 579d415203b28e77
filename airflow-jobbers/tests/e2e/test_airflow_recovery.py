"""Duplicate delivery, scheduler crash, Manager outage."""

from __future__ import annotations

import time

import pytest
from airflow_harness import Stack, jwt_claims, wait_for


def _no_state_mismatch(stack: Stack, dag_id: str, run_id: str | None = None) -> None:
    """No "state mismatch" audit row (the executor reported a failure) for the DAG, or for one
    of its runs when other tests fail runs of the same DAG on purpose."""
    logs = stack.api(
        "GET",
        "/eventLogs",
        params={"dag_id": dag_id, "event": "state mismatch", "limit": 1000},
    )
    rows = [r for r in logs["event_logs"] if run_id is None or r.get("run_id") == run_id]
    assert rows == []


@pytest.mark.redis
def test_duplicate_delivery_is_not_a_failure(stack: Stack) -> None:
    """The same workload delivered a second time: the copy ends as a duplicate, no
    failure is reported, and the original completes."""
    run_id = stack.trigger("jobbers_sleep", {"sleep": 20})
    stack.wait_ti_state("jobbers_sleep", run_id, "sleeper", {"running"}, timeout=120)
    row = stack.ti_rows("jobbers_sleep", run_id)["sleeper"]
    original = stack.job(row["external_executor_id"])
    assert original["kwargs"]["workload"]["token"] == "***"  # the API never shows it

    # Rebuild the very same workload: the redacted kwargs plus the real token, which only the
    # store holds (read here straight from the store file, as a broker redelivery would).
    tokens = [t for t in stack.stored_tokens() if jwt_claims(t).get("sub") == row["id"]]
    assert tokens, "the workload token is in the store"
    workload = dict(original["kwargs"]["workload"], token=tokens[0])
    copy = stack.run_workload_directly(workload, "dup", timeout=120)
    assert copy["status"] == "completed", copy
    assert copy["result"]["outcome"] == "duplicate", copy["result"]
    # Its start call was answered (refused: another copy runs), so its start slot was freed.
    assert set(copy["result"]) <= {"outcome", "ti_started_after"}, copy["result"]

    assert stack.wait_run("jobbers_sleep", run_id, timeout=120) == "success"
    ti = stack.ti("jobbers_sleep", run_id, "sleeper")
    assert ti["state"] == "success"
    assert ti["try_number"] == 1
    assert stack.wait_job(row["external_executor_id"])["result"]["outcome"] == "finished"
    _no_state_mismatch(stack, "jobbers_sleep", run_id)
    ran = [line for line in stack.marker_lines("sleep") if run_id in line]
    assert len(ran) == 1, ran


@pytest.mark.redis
@pytest.mark.postgres
def test_scheduler_crash_adopts_running_and_resets_unsubmitted(stack: Stack) -> None:
    """Kill -9 the scheduler while a task runs and another is queued but was never
    submitted (the Manager was down); a new scheduler adopts the first (it completes once)
    and resets the second (it runs once)."""
    running_run = stack.trigger("jobbers_adopt", {"sleep": 60})
    stack.wait_ti_state("jobbers_adopt", running_run, "adopt_me", {"running"}, timeout=120)
    running_row = stack.ti_rows("jobbers_adopt", running_run)["adopt_me"]
    old_job_id = running_row["queued_by_job_id"]

    stack.stop("manager")
    queued_run = stack.trigger("jobbers_adopt", {"sleep": 1})
    stack.wait_ti_state("jobbers_adopt", queued_run, "adopt_me", {"queued"}, timeout=120)
    unsent_id = wait_for(
        lambda: stack.ti_rows("jobbers_adopt", queued_run)["adopt_me"]["external_executor_id"],
        30,
        "the pre-assigned id",
    )
    stack.crash("scheduler")
    stack.start_manager()
    assert stack.jobbers_http("GET", f"/tasks/{unsent_id}").status_code == 404

    stack.start_scheduler()
    assert stack.wait_run("jobbers_adopt", running_run, timeout=240) == "success"
    assert stack.wait_run("jobbers_adopt", queued_run, timeout=240) == "success"

    adopted = stack.ti_rows("jobbers_adopt", running_run)["adopt_me"]
    assert adopted["external_executor_id"] == running_row["external_executor_id"]
    assert adopted["queued_by_job_id"] not in ("", old_job_id)  # adopted by the new scheduler
    assert adopted["try_number"] == "1"
    assert len(stack.wait_jobs_for_ti(adopted["id"])) == 1
    assert stack.wait_job(adopted["external_executor_id"])["result"]["outcome"] == "finished"

    reset = stack.ti_rows("jobbers_adopt", queued_run)["adopt_me"]
    assert reset["external_executor_id"] != unsent_id
    jobs = stack.wait_jobs_for_ti(reset["id"])
    assert [j["status"] for j in jobs] == ["completed"]

    for run_id in (running_run, queued_run):
        ran = [line for line in stack.marker_lines("adopt") if run_id in line]
        assert len(ran) == 1, (run_id, ran)


def test_manager_outage_loses_nothing(stack: Stack) -> None:
    """The Manager is down for 10 s while a run is queued; nothing is lost and the
    run completes after it returns, each task instance run by exactly one job."""
    stack.stop("manager")
    down_at = time.monotonic()
    run_id = stack.trigger("jobbers_outage")
    wait_for(
        lambda: any(t["state"] == "queued" for t in stack.tis("jobbers_outage", run_id)),
        60,
        "task instances queued while the Manager is down",
    )
    outage = 10.0 - (time.monotonic() - down_at)
    if outage > 0:
        time.sleep(outage)  # the scenario: the Manager stays down for 10 s
    assert stack.procs["scheduler"].alive()
    stack.start_manager()
    assert stack.wait_run("jobbers_outage", run_id, timeout=180) == "success"
    rows = stack.ti_rows("jobbers_outage", run_id)
    assert len(rows) == 5
    for row in rows.values():
        assert row["state"] == "success"
        assert row["try_number"] == "1"
        jobs = stack.wait_jobs_for_ti(row["id"])
        assert [j["status"] for j in jobs] == ["completed"], jobs
    _no_state_mismatch(stack, "jobbers_outage")
