"""Backoff formulas. Pure functions: the delay is data stored with the task, not a decorator."""

from __future__ import annotations

import random

from jobbers.models import RetryPolicy
from jobbers.params import INVALID_ARGUMENTS


def backoff_delay(policy: RetryPolicy, retry: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry).

    constant: base; linear: base * retry; exponential: base * 2**(retry-1);
    exponential_jitter: uniform(0, exponential) ("full jitter"). All capped at ``max_delay``.
    """
    if retry < 1:
        raise ValueError("retry numbers start at 1")
    base = policy.base_delay
    if policy.backoff == "constant":
        delay = base
    elif policy.backoff == "linear":
        delay = base * retry
    else:
        delay = base * 2.0 ** min(retry - 1, 64)
    delay = min(delay, policy.max_delay)
    if policy.backoff == "exponential_jitter":
        delay = (rng or random).uniform(0.0, delay)
    return delay


#: Errors the worker's death or a stuck task causes, not the task's code: ``retry_on`` does not
#: filter them out, but they still count against ``max_retries`` so a task that kills its worker
#: cannot loop forever.
INFRASTRUCTURE_ERRORS = frozenset({"LeaseLost", "HeartbeatTimeout"})


#: Errors that fail the same way on every attempt, whatever the policy says: kwargs that do not
#: bind to the task's parameters.
NEVER_RETRIED = frozenset({INVALID_ARGUMENTS})


def is_retryable(policy: RetryPolicy, error_type: str, retries_done: int) -> bool:
    if retries_done >= policy.max_retries or error_type in NEVER_RETRIED:
        return False
    if not policy.retry_on or error_type in INFRASTRUCTURE_ERRORS:
        return True
    short = error_type.rsplit(".", 1)[-1]
    return any(t == error_type or t.rsplit(".", 1)[-1] == short for t in policy.retry_on)
