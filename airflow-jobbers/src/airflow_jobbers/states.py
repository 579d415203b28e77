"""What a Jobbers status means for the Airflow executor.

Airflow 3 task processes report their own state to the API server; the executor only says
whether the workload *process* ended normally (success) or was lost (fail). This module is pure:
it imports neither Airflow nor Jobbers, so it is unit-tested without either.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from airflow_jobbers.protocol import OUTCOME_DUPLICATE, scrub

TERMINAL = frozenset({"completed", "failed", "cancelled", "dead"})


class Action(enum.Enum):
    """What the executor does with one status change of a job it tracks."""

    NONE = "none"  # still waiting or running: nothing to report
    RUNNING = "running"  # the job started (reported for callbacks only)
    SUCCESS = "success"  # the workload process ended normally, whatever the task's own outcome
    CHECK_RESULT = "check_result"  # completed, but it might have been a duplicate delivery
    #: The workload process failed, was lost, stalled or dead-lettered, or someone other than
    #: this executor cancelled the job (not ``removed``: the scheduler ignores ``removed``
    #: events, so the task instance would sit in running until its heartbeat timeout; ``fail``
    #: lets Airflow retry or fail it at once).
    FAIL = "fail"
    FORGET = "forget"  # a duplicate delivery that found the task instance running: no event


def action_for(status: str, *, maybe_duplicate: bool = False) -> Action:
    """Map a Jobbers status to the executor's action.

    ``maybe_duplicate``: the job started more than once, or was adopted, so a ``completed``
    must be checked against its result. (A job this executor revoked is no longer tracked, so
    its ``cancelled`` never gets here.)
    """
    if status == "completed":
        return Action.CHECK_RESULT if maybe_duplicate else Action.SUCCESS
    if status in ("failed", "stalled", "dead", "cancelled"):
        return Action.FAIL
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
