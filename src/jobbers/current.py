"""``current_task()``: which task this code runs in, without threading a context through calls.

The worker sets it around each attempt (async bodies, sync bodies in their threads, providers and
their teardowns), so a helper deep in a task's call stack, or a provider, can tag what it does
with the task's id and attempt.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class CurrentTask:
    id: str
    #: 1-based: the attempt running now.
    attempt: int
    name: str
    #: The workflow run the task belongs to; None for a task submitted on its own.
    workflow_run_id: str | None = None


_CURRENT: contextvars.ContextVar[CurrentTask | None] = contextvars.ContextVar(
    "jobbers-current-task", default=None
)


def current_task() -> CurrentTask:
    """The running task; ``RuntimeError`` outside of one (a script, the Manager)."""
    found = _CURRENT.get()
    if found is None:
        raise RuntimeError("current_task() is only known inside a running task")
    return found


def set_current(task: CurrentTask | None) -> contextvars.Token[CurrentTask | None]:
    return _CURRENT.set(task)


def reset_current(token: contextvars.Token[CurrentTask | None]) -> None:
    _CURRENT.reset(token)
