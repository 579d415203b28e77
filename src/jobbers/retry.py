"""Backoff formulas. Pure functions: the delay is data stored with the task, not a decorator."""

from __future__ import annotations

import random

from jobbers.models import ErrorInfo, RetryPolicy


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


def is_retryable(policy: RetryPolicy, error: ErrorInfo | str, retries_done: int) -> bool:
    """Whether a failed attempt runs again: retries are left, the error is not final, and it is
    one of ``retry_on`` (when given) or one of their subclasses.

    ``retry_on`` holds names (stored with each task, so the store can decide without the code):
    each matches an error whose type or any base class has that name, fully qualified
    (``mod.MyError``) or short (``MyError``).
    """
    if isinstance(error, str):
        error = ErrorInfo(error, "")
    if retries_done >= policy.max_retries or not error.retryable:
        return False
    if not policy.retry_on or error.type in INFRASTRUCTURE_ERRORS:
        return True
    return any(_matches(wanted, name) for wanted in policy.retry_on for name in error_names(error))


def error_names(error: ErrorInfo) -> tuple[str, ...]:
    return (error.type, *error.bases)


def _matches(wanted: str, name: str) -> bool:
    return wanted == name or wanted.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]
