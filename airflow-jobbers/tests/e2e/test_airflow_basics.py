"""The happy path, failures with retries, queues, the CLI."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from airflow_harness import PG_SCHEMA, Stack, wait_for


def test_cli_and_config_section(stack: Stack) -> None:
    """``airflow jobbers --help`` works; ``airflow config list`` shows ``[jobbers]``."""
    help_out = stack.run(stack.bin("airflow"), "jobbers", "--help", timeout=120)
    assert help_out.returncode == 0, help_out.stderr[-2000:]
    for command in ("worker", "status", "manager"):
        assert command in help_out.stdout
    config = stack.run(stack.bin("airflow"), "config", "list", "--section", "jobbers", timeout=120)
    assert config.returncode == 0, config.stderr[-2000:]
    assert "[jobbers]" in config.stdout
    assert "manager_url" in config.stdout
    status = stack.run(stack.bin("airflow"), "jobbers", "status", "--output", "json", timeout=120)
    assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-2000:]
    report = json.loads(status.stdout[status.stdout.index("{") :])
    assert report["health"]["status"] == "ok"
    worker_pids = {stack.procs[name].pid for name in ("worker-a", "worker-b")}
    listed = {int(w["id"].split(":")[1]) for w in report["workers"]}
    assert worker_pids <= listed, report["workers"]
    slots = {int(w["id"].split(":")[1]): w["slots"] for w in report["workers"]}
    assert {slots[pid] for pid in worker_pids} == {4}  # their --concurrency
    table = stack.run(stack.bin("airflow"), "jobbers", "status", timeout=120)
    assert f"  {stack.procs['worker-a'].pid}" not in table.stdout  # ids are host:pid:random
    (line,) = [x for x in table.stdout.splitlines() if f":{stack.procs['worker-a'].pid}:" in x]
    assert re.search(r"running/slots=\d+/4$", line), line


def test_workers_get_their_options_from_airflow_configuration(stack: Stack) -> None:
    """``[jobbers]`` worker options are resolved through Airflow's configuration by
    ``airflow jobbers worker`` and reach the Jobbers worker it becomes: ``fork_server`` is set
    nowhere in the test environment, so its value here comes from Airflow's configuration."""
    environ = Path(f"/proc/{stack.procs['worker-a'].pid}/environ").read_bytes().split(b"\0")
    variables = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    assert "AIRFLOW__JOBBERS__FORK_SERVER" not in stack.env()
    assert variables["AIRFLOW__JOBBERS__FORK_SERVER"] == "True"
    assert variables["AIRFLOW__JOBBERS__KILL_GRACE_PERIOD"] == "5"
    assert variables["AIRFLOW__JOBBERS__FORK_SERVER_PRELOAD"] == ""


@pytest.mark.redis
@pytest.mark.postgres
def test_fanout_and_chain_succeed_on_jobbers(stack: Stack) -> None:
    """20 parallel tasks and a short chain; ids and hostnames come from Jobbers."""
    run_id = stack.trigger("jobbers_fanout")
    assert stack.wait_run("jobbers_fanout", run_id, timeout=240) == "success"
    rows = stack.ti_rows("jobbers_fanout", run_id)
    assert len(rows) == 24  # start, 20 leaves, collect, chain_a, chain_b
    assert {row["state"] for row in rows.values()} == {"success"}
    worker_hosts = {socket.gethostname(), socket.getfqdn()}
    cached_worker = f":{stack.procs['worker-b'].pid}:"
    ran_on_b = 0
    for task_id, row in rows.items():
        job = stack.wait_job(row["external_executor_id"])  # the TI's id *is* the Jobbers task id
        assert job["status"] == "completed", (task_id, job["status"])
        assert job["kwargs"]["workload"]["ti"]["id"] == row["id"]
        assert job["result"]["outcome"] == "finished"
        # The workload process said when the API server answered its start (the start slot
        # was freed then, not at the end of the task).
        assert isinstance(job["result"]["ti_started_after"], float), job["result"]
        assert job["worker"].split(":")[0] in worker_hosts
        assert row["hostname"] in worker_hosts
        assert row["try_number"] == "1"
        ran_on_b += cached_worker in job["worker"]
    if stack.store == "postgres":  # the Jobbers store is in Airflow's own database
        ids = ", ".join(f"'{row['external_executor_id']}'" for row in rows.values())
        stored = stack.sql(
            f"select status, count(*) from {PG_SCHEMA}.tasks where id in ({ids}) group by 1"
        )
        assert stored == [["completed", str(len(rows))]], stored
    if ran_on_b:  # worker-b (dag_parse_cache on) parsed the DAG file in a DAG server
        assert "parsed jobbers_e2e_dags.py once" in stack.procs["worker-b"].log_text()
    # Every workload ran in a fork of the warm fork server, none in the slow fallback.
    for name, text in stack.all_logs().items():
        if name.startswith("worker"):
            assert "fork server unavailable" not in text, name


def test_failing_task_retries_then_fails_without_state_mismatch(stack: Stack) -> None:
    """Up_for_retry, then failed; the executor said the process ended normally."""
    run_id = stack.trigger("jobbers_fail_retry")
    seen: list[str] = []

    def finished() -> bool:
        state = stack.ti("jobbers_fail_retry", run_id, "always_fails")["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "failed"

    wait_for(finished, 180, "always_fails to fail", every=0.25)
    assert "up_for_retry" in seen, seen
    assert seen.index("up_for_retry") < len(seen) - 1
    assert stack.wait_run("jobbers_fail_retry", run_id, timeout=60) == "failed"
    assert stack.ti("jobbers_fail_retry", run_id, "always_fails")["try_number"] == 2
    mismatches = stack.api(
        "GET", "/eventLogs", params={"dag_id": "jobbers_fail_retry", "event": "state mismatch"}
    )
    assert mismatches["total_entries"] == 0
    jobs = wait_for(
        lambda: (
            (j := stack.jobs_for_task("jobbers_fail_retry", run_id, "always_fails"))
            and all(x["status"] == "completed" for x in j)
            and j
        ),
        60,
        "both tries' jobs to end",
    )
    assert sorted(j["kwargs"]["workload"]["ti"]["try_number"] for j in jobs) == [1, 2]
    assert {j["status"] for j in jobs} == {"completed"}
    assert all(j["result"]["outcome"] == "finished" for j in jobs)


def test_queue_routing(stack: Stack) -> None:
    """``queue="q2"`` tasks run only on a worker of queue q2."""
    q2 = stack.start_worker("worker-q2", "q2", concurrency=2)
    try:
        run_id = stack.trigger("jobbers_q2")
        assert stack.wait_run("jobbers_q2", run_id, timeout=180) == "success"
        rows = stack.ti_rows("jobbers_q2", run_id)
        on_q2 = stack.wait_job(rows["on_q2"]["external_executor_id"])
        on_default = stack.wait_job(rows["on_default"]["external_executor_id"])
        assert on_q2["queue"] == "q2"
        assert on_q2["worker"].split(":")[1] == str(q2.pid)
        assert on_default["queue"] == "default"
        assert on_default["worker"].split(":")[1] != str(q2.pid)
    finally:
        stack.stop("worker-q2")
    wait_for(lambda: not q2.alive(), 30, "the q2 worker to stop")
