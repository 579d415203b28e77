"""DAGs for the airflow-jobbers end-to-end tests (parsed by the test Airflow's dag-processor).

Every DAG is unscheduled: the tests trigger runs through Airflow's REST API. Sleep lengths come
from the run's conf so that a test decides how long a task lives.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

START = datetime(2024, 1, 1)
FAST_RETRY = {"retries": 1, "retry_delay": timedelta(seconds=1)}


def _sleep_from_conf(name: str, default: float) -> None:
    from airflow.sdk import get_current_context

    conf = get_current_context()["dag_run"].conf or {}
    deadline = time.monotonic() + float(conf.get(name, default))
    while time.monotonic() < deadline:
        time.sleep(0.2)


def _marker(kind: str) -> None:
    """Append a line to $JOBBERS_E2E_MARKERS/<kind>: tests count how often a task body ran."""
    from airflow.sdk import get_current_context

    folder = os.environ.get("JOBBERS_E2E_MARKERS")
    if not folder:
        return
    ti = get_current_context()["ti"]
    with open(os.path.join(folder, kind), "a") as fh:
        fh.write(f"{ti.dag_id} {ti.run_id} {ti.task_id} {ti.try_number} {os.getpid()}\n")


with DAG("jobbers_fanout", schedule=None, start_date=START, catchup=False, max_active_tasks=32):

    @task
    def start() -> int:
        return 1

    @task
    def leaf(i: int) -> int:
        return i

    @task
    def collect(values: list[int]) -> int:
        return sum(values)

    @task
    def chain_a(total: int) -> int:
        return total + 1

    @task
    def chain_b(value: int) -> int:
        return value + 1

    s = start()
    leaves = [leaf.override(task_id=f"leaf_{i:02d}")(i) for i in range(20)]
    s >> leaves
    chain_b(chain_a(collect(leaves)))


with DAG("jobbers_fail_retry", schedule=None, start_date=START, catchup=False, default_args=FAST_RETRY):

    @task
    def always_fails() -> None:
        raise RuntimeError("this task fails on purpose")

    always_fails()


with DAG("jobbers_kill", schedule=None, start_date=START, catchup=False, default_args=FAST_RETRY):

    @task(queue="killq")
    def long_then_quick() -> None:
        from airflow.sdk import get_current_context

        _marker("kill")
        if get_current_context()["ti"].try_number == 1:
            _sleep_from_conf("sleep", 120)

    long_then_quick()


with DAG("jobbers_noworker", schedule=None, start_date=START, catchup=False):

    @task(queue="nowork")
    def never_started() -> None:
        _marker("noworker")

    never_started()


with DAG("jobbers_nowork_canary", schedule=None, start_date=START, catchup=False):

    @task(queue="nowork")
    def canary() -> None:
        _marker("canary")

    canary()


with DAG("jobbers_sleep", schedule=None, start_date=START, catchup=False):

    @task
    def sleeper() -> None:
        _marker("sleep")
        _sleep_from_conf("sleep", 20)

    sleeper()


with DAG("jobbers_q2", schedule=None, start_date=START, catchup=False):

    @task(queue="q2")
    def on_q2() -> str:
        return "q2"

    @task
    def on_default() -> str:
        return "default"

    on_q2()
    on_default()


with DAG("jobbers_adopt", schedule=None, start_date=START, catchup=False):

    @task
    def adopt_me() -> None:
        _marker("adopt")
        _sleep_from_conf("sleep", 25)

    adopt_me()


with DAG("jobbers_outage", schedule=None, start_date=START, catchup=False, max_active_tasks=32):

    @task
    def step(i: int) -> int:
        return i

    [step.override(task_id=f"step_{i}")(i) for i in range(5)]


try:  # executor callbacks (Airflow 3.2+): a missed deadline runs a SyncCallback on Jobbers
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
except ImportError:  # pragma: no cover - older Airflow
    SyncCallback = None

if SyncCallback is not None:
    with DAG(
        "jobbers_deadline",
        schedule=None,
        start_date=START,
        catchup=False,
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(seconds=3),
            callback=SyncCallback("jobbers_e2e_callbacks.record_missed_deadline"),
        ),
    ):

        @task
        def slow() -> None:
            _sleep_from_conf("sleep", 20)

        slow()
