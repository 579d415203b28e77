"""Where an unsuccessful attempt sends its task, decided without any store.

Every backend reads a task's policy and counters, asks :func:`decide`, and applies the steps it
names (:mod:`jobbers.effects` says what each does) in one atomic step; so retry,
dead-lettering, lost-lease requeueing, backoff, the start records kept and the idempotency
fingerprint mean the same thing whichever store holds the task.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from jobbers import effects
from jobbers.effects import FailureKind as FailureKind
from jobbers.models import JSON, ErrorInfo, NewTask, QueueConfig, RetryPolicy, Status

#: Error types a stuck task causes rather than its code: ``retry_on`` does not filter them out,
#: but they spend ``max_retries`` so a task that hangs every time cannot loop forever.
STUCK_ERRORS = frozenset({"HeartbeatTimeout"})


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


def is_retryable(policy: RetryPolicy, error: ErrorInfo, retries_done: int) -> bool:
    """Whether a failed attempt runs again: retries are left, the error is not final, and it is
    one of ``retry_on`` (when given) or one of their subclasses.

    ``retry_on`` holds names (stored with each task, so the store can decide without the code):
    each matches an error whose type or any base class has that name, fully qualified
    (``mod.MyError``) or short (``MyError``).
    """
    if retries_done >= policy.max_retries or not error.retryable:
        return False
    if not policy.retry_on or error.type in STUCK_ERRORS:
        return True
    return any(_matches(wanted, name) for wanted in policy.retry_on for name in error_names(error))


def error_names(error: ErrorInfo) -> tuple[str, ...]:
    return (error.type, *error.bases)


def _matches(wanted: str, name: str) -> bool:
    return wanted == name or wanted.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Decision:
    """Where a task goes after an unsuccessful attempt: one of the decision steps of
    :mod:`jobbers.effects` (``retry`` or ``requeue`` at ``due_at``, ``fail`` or ``give_up``),
    then ``dead_letter`` when ``dead``. ``retries`` and ``lost`` are the counters after it,
    as applying the step's ``spends`` leaves them."""

    effect: effects.Effect
    retries: int
    lost: int
    reason: str
    due_at: float | None = None
    dead: bool = False

    @property
    def status(self) -> Status:
        return self.effect.to

    @property
    def steps(self) -> tuple[effects.Effect, ...]:
        """The steps to apply, in order, from the status the attempt left the task in."""
        return (self.effect, effects.DEAD_LETTER) if self.dead else (self.effect,)


def decide(
    policy: RetryPolicy,
    kind: FailureKind,
    error: ErrorInfo,
    retries: int,
    lost: int,
    now: float,
    rng: random.Random | None = None,
) -> Decision:
    """A lost lease is the infrastructure's fault: it requeues at once without spending
    ``max_retries``, up to ``max_lost`` lost attempts. Everything else spends the retry budget,
    with backoff, while the error type is retryable."""
    reason = effects.error_reason(error)
    if kind == "lease_lost":
        if lost < policy.max_lost:
            return Decision(effects.REQUEUE, retries, lost + 1, reason, due_at=now)
        reason = effects.lost_reason(error, lost + 1, policy.max_lost)
        return Decision(effects.GIVE_UP, retries, lost + 1, reason, dead=_saves(policy))
    if is_retryable(policy, error, retries):
        due = now + backoff_delay(policy, retries + 1, rng)
        return Decision(effects.RETRY, retries + 1, lost, reason, due_at=due)
    return Decision(effects.FAIL, retries, lost, reason, dead=_saves(policy))


def _saves(policy: RetryPolicy) -> bool:
    return policy.dead_letter == "save"


def start_retention(configs: Iterable[QueueConfig], floor: float = 3600.0) -> float:
    """Seconds start records must be kept: the longest rate period in use (at least ``floor``)."""
    return max([floor, *(c.rate_period for c in configs if c.rate_limit is not None)])


#: One encoder for every call: ``json.dumps`` with options builds a new one each time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_quoted = json.encoder.encode_basestring_ascii


def canonical(value: JSON) -> str:
    return _CANONICAL.encode(value)


def fingerprint(task: NewTask) -> str:
    """What makes two submissions with one id "the same" for idempotency: name, queue, kwargs.

    Stored with each task and compared with later submissions, so its text never changes: the
    canonical JSON of ``[name, queue, canonical JSON of kwargs]``, built without encoding the
    outer list generically."""
    kwargs = _CANONICAL.encode(task.kwargs)
    return f"[{_quoted(task.name)},{_quoted(task.queue)},{_quoted(kwargs)}]"


@lru_cache(maxsize=256)
def policy_json(policy: RetryPolicy) -> str:
    """A policy as stored. Policies repeat across tasks and are immutable: each distinct one is
    encoded once."""
    return json.dumps(policy.to_json(), separators=(",", ":"))
