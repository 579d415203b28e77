"""The Jobbers task that runs one Airflow workload: load it in workers with
``--tasks airflow_jobbers.runner`` (``airflow jobbers worker`` does).

The Manager loads this module too (to know the task's name and policy), so importing it must
not import Airflow. The workload is validated against Airflow's own model by the workload
process (``child.run_bytes``) before anything runs: validating here as well would only make
each worker import Airflow on its first task, seconds of CPU in the middle of a run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from typing import Any

from jobbers.registry import TaskContext, task

from airflow_jobbers import protocol
from airflow_jobbers.states import OUTCOME_DUPLICATE, OUTCOME_FINISHED

log = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when a running workload is cancelled.
KILL_GRACE_PERIOD = float(os.environ.get("AIRFLOW__JOBBERS__KILL_GRACE_PERIOD", "10"))
#: Run workloads in forks of a process that imported Airflow once (``[jobbers] fork_server``).
FORK_SERVER = os.environ.get("AIRFLOW__JOBBERS__FORK_SERVER", "true").lower() in (
    "1",
    "true",
    "yes",
)
_OUTPUT_LINES = 40
_PR_SET_PDEATHSIG = 1


class WorkloadRejected(Exception):
    """The kwargs are not a valid Airflow workload: nothing was started."""


class WorkloadExpired(Exception):
    """The workload's token expired before it could start (it waited longer than Airflow's
    ``[scheduler] task_queued_timeout``); the scheduler requeues the task instance."""


class WorkloadProcessFailed(Exception):
    """The workload process ended abnormally (it could not load or reach Airflow, or crashed)."""


# max_lost=0: a lost lease fails the job at once; Airflow retries by its own policy.
@task(name=protocol.TASK_NAME, max_retries=0, dead_letter="drop", max_lost=0)
async def execute_workload(ctx: TaskContext, workload: dict[str, Any]) -> dict[str, Any]:
    """Run an Airflow ``ExecuteTask``/``ExecuteCallback`` workload in a child process.

    Result ``{"outcome": "finished", "exit_code": n}`` when Airflow's supervisor returned
    (the task's own state was already reported to the API server), or
    ``{"outcome": "duplicate"}`` when another copy of the task instance is running.
    """
    summary = protocol.workload_summary(workload)
    check_workload(workload)
    log.info("running %s (job %s, attempt %s)", summary, ctx.task_id, ctx.attempt)
    code, output = await _run(json.dumps(workload).encode())
    token = str(workload[protocol.TOKEN_KEY])
    return outcome_for(code, [line.replace(token, "***") for line in output], summary)


async def _run(data: bytes) -> tuple[int, list[str]]:
    """In a fork of the warm fork server when enabled, else (or if it is down) a fresh child."""
    if FORK_SERVER:
        from airflow_jobbers.fork_client import ForkServerUnavailable, run_forked

        try:
            return await run_forked(data, KILL_GRACE_PERIOD)
        except ForkServerUnavailable as exc:
            log.warning("fork server unavailable (%s); using a fresh process", exc)
    return await run_child(data)


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


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the worker dies (Linux), so a killed worker
    leaves no orphan task process behind to confuse a retry."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


CHILD_ARGV: tuple[str, ...] = (sys.executable, "-m", "airflow_jobbers.child")


async def run_child(
    stdin_data: bytes, argv: tuple[str, ...] | None = None, grace: float | None = None
) -> tuple[int, list[str]]:
    """Start ``python -m airflow_jobbers.child``, feed it ``stdin_data``, wait for it.

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
        preexec_fn=_die_with_parent,
    )
    output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(stdin_data)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        proc.stdin.close()
        async for raw in proc.stdout:
            output.append(raw.decode(errors="replace").rstrip()[:2000])
        code = await proc.wait()
    except BaseException:
        await _stop(proc, KILL_GRACE_PERIOD if grace is None else grace)
        raise
    return code, list(output)


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the child's group, then SIGKILL after the grace period."""
    if proc.returncode is not None:
        return
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), 5.0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def outcome_for(code: int, output: list[str], summary: str) -> dict[str, Any]:
    """Turn the child's exit code into the task result, or raise for an abnormal end."""
    if code == protocol.EXIT_FINISHED:
        exit_code: int | None = None
        for line in reversed(output):
            if line.startswith(protocol.RESULT_MARKER):
                with contextlib.suppress(ValueError):
                    exit_code = int(line[len(protocol.RESULT_MARKER) :])
                break
        return {"outcome": OUTCOME_FINISHED, "exit_code": exit_code}
    if code == protocol.EXIT_DUPLICATE:
        log.warning("%s is already running elsewhere: duplicate delivery, not run again", summary)
        return {"outcome": OUTCOME_DUPLICATE}
    tail = "\n".join(output[-10:])
    if code == protocol.EXIT_EXPIRED:
        raise WorkloadExpired(f"token expired before the workload could start\n{tail}")
    if code == protocol.EXIT_INVALID:
        raise WorkloadRejected(tail or "invalid workload")
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    raise WorkloadProcessFailed(f"workload process ended with {how}\n{tail}")
