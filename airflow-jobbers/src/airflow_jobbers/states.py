"""What a Jobbers status means for the Airflow executor.

Airflow 3 task processes report their own state to the API server; the executor only says
whether the workload *process* ended normally (success) or was lost (fail). This module is pure:
it imports neither Airflow nor Jobbers, so it is unit-tested without either.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from airflow_jobbers.protocol import scrub

#: Result ``outcome`` of a runner task that found the task instance already running elsewhere.
OUTCOME_DUPLICATE = "duplicate"
#: Result ``outcome`` of a runner task whose workload process ran to its end.
OUTCOME_FINISHED = "finished"

TERMINAL = frozenset({"completed", "failed", "cancelled", "dead"})


class Action(enum.Enum):
    """What the executor does with one status change of a job it tracks."""

    NONE = "none"  # still waiting or running: nothing to report
    RUNNING = "running"  # the job started (reported for callbacks only)
    SUCCESS = "success"  # the workload process ended normally, whatever the task's own outcome
    CHECK_RESULT = "check_result"  # completed, but it might have been a duplicate delivery
    #: The workload process failed, was lost, stalled or dead-lettered, or someone other than
    #: this executor cancelled the job. (The RFC mapped that last case to ``removed``, but the
    #: scheduler ignores ``removed`` events, so the task instance would sit in running until
    #: the heartbeat timeout; ``fail`` lets Airflow retry or fail it at once.)
    FAIL = "fail"
    FORGET = "forget"  # cancelled by this executor's revoke_task: no event


def action_for(status: str, *, revoked: bool = False, maybe_duplicate: bool = False) -> Action:
    """Map a Jobbers status to the executor's action.

    ``revoked``: this executor cancelled the job itself. ``maybe_duplicate``: the job started
    more than once, or was adopted, so a ``completed`` must be checked against its result.
    """
    if status == "completed":
        return Action.CHECK_RESULT if maybe_duplicate else Action.SUCCESS
    if status in ("failed", "stalled", "dead", "cancelled"):
        return Action.FORGET if revoked else Action.FAIL
    if status == "started":
        return Action.RUNNING
    return Action.NONE


def action_for_result(result: Any) -> Action:
    """Decide a ``completed`` job from its result: a duplicate delivery reports nothing."""
    if isinstance(result, Mapping) and result.get("outcome") == OUTCOME_DUPLICATE:
        return Action.FORGET
    return Action.SUCCESS


def describe(status: str, reason: str | None, worker: str | None) -> str:
    """Short text for the scheduler's event info (shown in its 'state mismatch' message)."""
    text = f"Jobbers job {status}"
    if reason:
        text += f": {reason}"
    if worker:
        text += f" (worker {worker})"
    return scrub(text, 1000)
