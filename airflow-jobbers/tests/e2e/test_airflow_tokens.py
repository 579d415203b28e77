"""The workload's token shows in no Jobbers log line, API answer or page.

Runs last (file order), after the other tests have pushed their workloads through every path:
submissions, retries, revocations, duplicates, adoption and the Manager outage.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow_harness import Stack, jwt_claims


def _process_cmdlines() -> str:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append(
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
    return "\n".join(out)


@pytest.mark.redis
def test_token_never_shown(stack: Stack) -> None:
    run_id = stack.trigger("jobbers_sleep", {"sleep": 10})
    stack.wait_ti_state("jobbers_sleep", run_id, "sleeper", {"running"}, timeout=120)
    row = stack.ti_rows("jobbers_sleep", run_id)["sleeper"]
    live = [t for t in stack.stored_tokens() if jwt_claims(t).get("sub") == row["id"]]
    assert live, "the running workload's token is in the store"
    argv_of_all_processes = _process_cmdlines()  # while the workload process runs
    assert stack.wait_run("jobbers_sleep", run_id, timeout=120) == "success"

    tokens = stack.stored_tokens()
    workload_tokens = {t for t in tokens if jwt_claims(t).get("scope") == "workload"}
    assert len(workload_tokens) >= 3, "the earlier tests stored workload tokens"

    shown: dict[str, str] = {"argv": argv_of_all_processes}
    jobbers_logs = {k: v for k, v in stack.all_logs().items() if "manager" in k or "worker" in k}
    assert {"manager", "worker-a", "worker-b"} <= set(jobbers_logs)
    shown.update({f"log:{k}": v for k, v in jobbers_logs.items()})

    jobs = stack.runner_jobs()
    assert len(jobs) >= len(workload_tokens)
    shown["GET /tasks"] = str(jobs)
    for job in jobs:
        assert job["kwargs"]["workload"]["token"] == "***"
        response = stack.jobbers_http("GET", f"/tasks/{job['id']}")
        shown[f"GET /tasks/{job['id']}"] = response.text
    shown["GET /events"] = stack.jobbers_http("GET", "/events", params={"limit": 10000}).text
    for path in ("/workers", "/dead-letter", "/dlq", "/queues", "/metrics"):
        shown[f"GET {path}"] = stack.jobbers_http("GET", path).text

    # Dashboard pages, where the core serves them: the index and one page per job.
    pages = 0
    for path in ("/", "/dashboard", "/dashboard/", "/ui", "/ui/"):
        response = stack.jobbers_http("GET", path, follow_redirects=True)
        if response.status_code == 200 and "html" in response.headers.get("content-type", ""):
            shown[f"page {path}"] = response.text
            pages += 1
            for job in jobs[:40]:
                for sub in (f"tasks/{job['id']}", f"task/{job['id']}"):
                    page = stack.jobbers_http("GET", f"{path.rstrip('/')}/{sub}")
                    if page.status_code == 200:
                        shown[f"page {path}{sub}"] = page.text
    # Executor's own view, through Airflow: the log of a task instance and `airflow jobbers status`.
    shown["airflow jobbers status"] = stack.run(
        stack.bin("airflow"), "jobbers", "status", "--output", "json", timeout=120
    ).stdout

    leaks = sorted(
        where for where, text in shown.items() for token in tokens if token and token in text
    )
    assert not leaks, f"token shown in: {leaks}"
    # and not even a fragment of its signature
    for token in tokens:
        signature = token.rsplit(".", 1)[-1]
        assert not any(signature in text for text in shown.values())
    print(f"checked {len(tokens)} tokens against {len(shown)} sources ({pages} dashboard roots)")


def test_expired_workload_is_not_started(stack: Stack) -> None:
    """A workload whose token has expired fails at once with that reason and never runs."""
    run_id, workload = _finished_sleeper_workload(stack)
    workload["token"] = _fake_jwt(workload, expires_in=-5)
    job = stack.run_workload_directly(workload, "expired")
    assert job["status"] in ("failed", "dead"), job
    error = job["error"] or job["attempts"][-1]["error"]
    assert "expired" in error["message"]
    assert "WorkloadExpired" in error["type"]
    ran = [line for line in stack.marker_lines("sleep") if run_id in line]
    assert len(ran) == 1


def test_invalid_workload_is_rejected_before_anything_runs(stack: Stack) -> None:
    """A workload that passes the runner's shape check but not Airflow's own model is refused
    by the workload process before Airflow's supervisor starts, with no value echoed back."""
    run_id, workload = _finished_sleeper_workload(stack)
    workload["token"] = _fake_jwt(workload, expires_in=600)
    workload["ti"] = {**workload["ti"], "id": "not-a-uuid", "try_number": "many"}
    job = stack.run_workload_directly(workload, "invalid")
    assert job["status"] in ("failed", "dead"), job
    error = job["error"] or job["attempts"][-1]["error"]
    assert "WorkloadRejected" in error["type"]
    assert "not a valid Airflow workload" in error["message"]
    assert "ti.id" in error["message"]
    assert "not-a-uuid" not in error["message"]
    assert workload["token"] not in str(job)
    ran = [line for line in stack.marker_lines("sleep") if run_id in line]
    assert len(ran) == 1


def _finished_sleeper_workload(stack: Stack) -> tuple[str, dict[str, Any]]:
    """Run jobbers_sleep to success; return its run id and a copy of the workload it ran."""
    run_id = stack.trigger("jobbers_sleep", {"sleep": 1})
    assert stack.wait_run("jobbers_sleep", run_id, timeout=120) == "success"
    row = stack.ti_rows("jobbers_sleep", run_id)["sleeper"]
    return run_id, dict(stack.job(row["external_executor_id"])["kwargs"]["workload"])


def _fake_jwt(workload: dict[str, Any], expires_in: float) -> str:
    """A token shaped like Airflow's for this workload's task instance (not validly signed)."""

    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    sub = workload["ti"]["id"]
    claims = {"sub": sub, "scope": "workload", "exp": int(time.time() + expires_in)}
    return f"{b64({'alg': 'HS512'})}.{b64(claims)}.c2lnbmF0dXJl"
