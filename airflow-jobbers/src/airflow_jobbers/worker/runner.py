"""The Jobbers task that runs one Airflow workload: load it in workers with
``--tasks airflow_jobbers.runner`` (``airflow jobbers worker`` does).

The Manager loads this module too (to know the task's name and policy), so importing it must
not import Airflow. The workload is validated against Airflow's own model by the workload
process (``child.run_bytes``) before anything runs: validating here as well would only make
each worker import Airflow on its first task, seconds of CPU in the middle of a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
import time
from typing import Any

from jobbers.registry import TaskContext, on_worker_start, task

from airflow_jobbers import config, protocol
from airflow_jobbers.worker import startgate
from airflow_jobbers.worker.childproc import OutputTail, die_with_parent, signal_group, stop_group

log = logging.getLogger(__name__)


class WorkloadRejected(Exception):
    """The kwargs are not a valid Airflow workload: nothing was started."""


class WorkloadExpired(Exception):
    """The workload's token expired before it could start (it waited longer than Airflow's
    ``[scheduler] task_queued_timeout``); the scheduler requeues the task instance."""


class WorkloadProcessFailed(Exception):
    """The workload process ended abnormally (it could not load or reach Airflow, or crashed)."""


#: A lost lease fails the job at once (``max_lost=0``): Airflow retries the task instance by its
#: own policy, so Jobbers must not run it again behind the scheduler's back.
@task(name=protocol.TASK_NAME, max_retries=0, max_lost=0, dead_letter="drop")
async def execute_workload(ctx: TaskContext, workload: dict[str, Any]) -> dict[str, Any]:
    """Run an Airflow ``ExecuteTask``/``ExecuteCallback`` workload in a child process.

    Result ``{"outcome": "finished", "exit_code": n}`` when Airflow's supervisor returned
    (the task's own state was already reported to the API server), or
    ``{"outcome": "duplicate"}`` when another copy of the task instance is running; plus
    ``ti_started_after``, the seconds until the API server answered the start call, when it did.
    """
    summary = protocol.workload_summary(workload)
    check_workload(workload)
    log.info("running %s (job %s, attempt %s)", summary, ctx.task_id, ctx.attempt)
    data = json.dumps(workload).encode()
    limit = max_starting() if workload.get("type") == "ExecuteTask" else 0
    async with startgate.gate(limit).slot() as free:
        watch = startgate.StartWatch(free)
        code, output = await _run(data, watch)
    token = str(workload[protocol.TOKEN_KEY])
    result = outcome_for(code, [line.replace(token, "***") for line in output], summary)
    if watch.after is not None:
        result["ti_started_after"] = round(watch.after, 3)
    return result


@on_worker_start
async def start_fork_server() -> None:
    """Start the fork server with the worker: its Airflow imports take seconds of CPU, which
    the first task instance of a run would otherwise wait for (and a DAG run's first task
    instance is alone on the path to all the others)."""
    if not fork_server_enabled():
        return
    from airflow_jobbers.worker.fork_client import ForkServerUnavailable, start_server

    try:
        await start_server()
    except ForkServerUnavailable as exc:
        log.warning("fork server unavailable (%s); it is tried again with the first workload", exc)


@functools.cache
def kill_grace_period() -> float:
    """``[jobbers] kill_grace_period``: seconds between SIGTERM and SIGKILL on cancel."""
    return float(config.option("kill_grace_period"))


@functools.cache
def max_starting() -> int:
    """``[jobbers] max_starting``: workloads of this worker starting their task instance at
    once (0: no limit); see ``startgate``."""
    return config.as_max_starting(config.option("max_starting"))


@functools.cache
def fork_server_enabled() -> bool:
    """``[jobbers] fork_server``: run workloads in forks of a process that imported Airflow."""
    return config.as_bool(config.option("fork_server"))


async def _run(data: bytes, watch: startgate.StartWatch | None = None) -> tuple[int, list[str]]:
    """In a fork of the warm fork server when enabled, else (or if it is down) a fresh child."""
    if fork_server_enabled():
        from airflow_jobbers.worker.fork_client import ForkServerUnavailable, run_forked

        try:
            return await run_forked(data, kill_grace_period(), watch=watch)
        except ForkServerUnavailable as exc:
            log.warning("fork server unavailable (%s); using a fresh process", exc)
    return await run_child(data, watch=watch)


def check_workload(workload: Any) -> None:
    """Cheap checks before anything is started: shape and token expiry."""
    if not isinstance(workload, dict) or workload.get("type") not in (
        "ExecuteTask",
        "ExecuteCallback",
    ):
        raise WorkloadRejected(
            "the 'workload' argument is not an Airflow ExecuteTask/ExecuteCallback"
        )
    token = workload.get(protocol.TOKEN_KEY)
    if not isinstance(token, str) or not token:
        raise WorkloadRejected("the workload carries no token")
    expiry = protocol.token_expiry(token)
    if expiry is not None and expiry <= time.time():
        waited = time.time() - expiry
        raise WorkloadExpired(
            f"token expired {waited:.0f}s ago, before the workload could start (it waited longer "
            "than [scheduler] task_queued_timeout); not started, Airflow requeues it"
        )


CHILD_ARGV: tuple[str, ...] = (sys.executable, "-m", "airflow_jobbers.worker.child")


async def run_child(
    stdin_data: bytes,
    argv: tuple[str, ...] | None = None,
    grace: float | None = None,
    watch: startgate.StartWatch | None = None,
) -> tuple[int, list[str]]:
    """Start ``python -m airflow_jobbers.worker.child``, feed it ``stdin_data``, wait for it.

    On cancellation the child's process group gets SIGTERM, then SIGKILL after the grace
    period, and the cancellation propagates.
    """
    command = argv or CHILD_ARGV
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    output = OutputTail()
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(stdin_data)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        proc.stdin.close()
        async for raw in proc.stdout:
            if watch is None or not watch.seen(raw):
                output.add(raw)
        code = await proc.wait()
    except BaseException:
        grace = kill_grace_period() if grace is None else grace
        await stop_group(
            lambda sig: signal_group(proc.pid, sig),
            proc.wait,
            lambda: proc.returncode is not None,
            grace,
        )
        raise
    return code, output.lines()


def outcome_for(code: int, output: list[str], summary: str) -> dict[str, Any]:
    """Turn the child's exit code into the task result, or raise for an abnormal end."""
    if code == protocol.EXIT_FINISHED:
        exit_code: int | None = None
        for line in reversed(output):
            if line.startswith(protocol.RESULT_MARKER):
                with contextlib.suppress(ValueError):
                    exit_code = int(line[len(protocol.RESULT_MARKER) :])
                break
        return {"outcome": protocol.OUTCOME_FINISHED, "exit_code": exit_code}
    if code == protocol.EXIT_DUPLICATE:
        log.warning("%s is already running elsewhere: duplicate delivery, not run again", summary)
        return {"outcome": protocol.OUTCOME_DUPLICATE}
    tail = "\n".join(output[-10:])
    if code == protocol.EXIT_EXPIRED:
        raise WorkloadExpired(f"token expired before the workload could start\n{tail}")
    if code == protocol.EXIT_INVALID:
        raise WorkloadRejected(tail or "invalid workload")
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    raise WorkloadProcessFailed(f"workload process ended with {how}\n{tail}")
