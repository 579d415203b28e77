"""The workload process: ``python -m airflow_jobbers.worker.child`` with the workload JSON on stdin.

Its argv never carries the workload (it holds a bearer token). It validates the input before
anything runs, runs it under Airflow's supervisor, and says how it ended with its exit code
(see ``protocol``) plus a final ``RESULT_MARKER`` line on stdout.
"""

from __future__ import annotations

import sys
import time

from airflow_jobbers import protocol
from airflow_jobbers.worker.childproc import die_with_parent


def main() -> int:
    """Read, validate and run one workload from stdin; return the process exit code."""
    import os

    # Every process the supervisor forks (the task process) dies with it too.
    os.register_at_fork(after_in_child=die_with_parent)
    raw = sys.stdin.buffer.read()
    sys.stdin.close()
    return run_bytes(raw)


def run_bytes(raw: bytes) -> int:
    """Validate and run one workload in this process (the child, or a fork-server fork;
    either has made the processes it forks die with it)."""
    from airflow_jobbers.worker.workload import (
        CallbackFailed,
        DuplicateDelivery,
        InvalidWorkload,
        parse_workload,
        run_workload,
    )

    try:
        workload = parse_workload(raw)
    except InvalidWorkload as exc:
        print(f"airflow-jobbers: {exc}", file=sys.stderr)
        return protocol.EXIT_INVALID
    del raw
    expiry = protocol.token_expiry(workload.token)
    if expiry is not None and expiry <= time.time():
        print("airflow-jobbers: the workload token has expired; not started", file=sys.stderr)
        return protocol.EXIT_EXPIRED
    try:
        code = run_workload(workload)
    except DuplicateDelivery as exc:
        print(f"airflow-jobbers: duplicate delivery: {exc}", file=sys.stderr)
        return protocol.EXIT_DUPLICATE
    except CallbackFailed as exc:
        print(f"airflow-jobbers: callback failed: {exc}", file=sys.stderr)
        return protocol.EXIT_ERROR
    sys.stdout.flush()
    print(f"{protocol.RESULT_MARKER}{code}", flush=True)
    return protocol.EXIT_FINISHED


if __name__ == "__main__":
    sys.exit(main())
