"""The facts the executor (scheduler side) and the runner (worker side) share.

Pure constants and helpers: no Airflow, no Jobbers imports.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

#: Name of the Jobbers task that runs one Airflow workload (the runner's registered name).
TASK_NAME = "airflow_jobbers.runner.execute_workload"
#: The single keyword argument of that task: the workload as a JSON object. Its ``token`` key
#: (``kwargs.workload.token``) holds a JWT and must be redacted wherever kwargs are shown.
WORKLOAD_KWARG = "workload"
TOKEN_KEY = "token"

#: Exit codes of ``python -m airflow_jobbers.worker.child``.
EXIT_FINISHED = 0
EXIT_ERROR = 1
EXIT_INVALID = 65  # EX_DATAERR: the input is not a valid Airflow workload
EXIT_DUPLICATE = 75  # EX_TEMPFAIL: TaskAlreadyRunningError, another copy is running
EXIT_EXPIRED = 76  # the workload token had expired before the process started

#: Prefix of the child's last stdout line, followed by the supervisor's exit code.
RESULT_MARKER = "JOBBERS-AIRFLOW-RESULT "

#: Result ``outcome`` of a runner task whose workload process ran to its end.
OUTCOME_FINISHED = "finished"
#: Result ``outcome`` of a runner task that found the task instance already running elsewhere.
OUTCOME_DUPLICATE = "duplicate"

#: Fork server, per connection: the runner sends the workload's length in this many bytes
#: (big-endian) and the workload; the workload process answers ``PID <pid>`` and its output,
#: and the connection ends with ``FORK_EXIT_PREFIX<exit code>`` (negative: killed by a signal).
FORK_LENGTH_BYTES = 8
FORK_MAX_WORKLOAD = 64 * 1024 * 1024
FORK_PID_PREFIX = "PID "
FORK_EXIT_PREFIX = b"\0EXIT "
#: The fork server's line on its stdout once it accepts connections.
FORK_READY = b"ready"


def token_expiry(token: str) -> float | None:
    """Return the ``exp`` claim (epoch seconds) of a JWT without verifying it, or None.

    The runner only needs to know whether a token is already useless; the API server
    verifies signatures.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and math.isfinite(exp):
        return float(exp)
    return None


def workload_summary(workload: Any) -> str:
    """A loggable one-line description of a workload: never includes the token."""
    if not isinstance(workload, dict):
        return "<invalid workload>"
    kind = workload.get("type", "?")
    ti = workload.get("ti")
    if isinstance(ti, dict):
        return (
            f"{kind} dag_id={ti.get('dag_id')} task_id={ti.get('task_id')} "
            f"run_id={ti.get('run_id')} try={ti.get('try_number')} map_index={ti.get('map_index')}"
        )
    callback = workload.get("callback")
    if isinstance(callback, dict):
        return f"{kind} callback={callback.get('id')}"
    return str(kind)


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def scrub(text: object, limit: int = 500) -> str:
    """``str(text)`` shortened, with anything shaped like a JWT replaced by ``***``: for
    messages that end up in Airflow's audit log (e.g. a Manager error detail)."""
    return _JWT.sub("***", str(text))[:limit]


def redact(value: Any) -> Any:
    """Copy of ``value`` with every mapping key named ``token`` replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: ("***" if k == TOKEN_KEY else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
