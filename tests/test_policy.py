"""The store-independent decisions, table by table: no store is opened here."""

from __future__ import annotations

import random

import pytest

from jobbers.models import ErrorInfo, NewTask, QueueConfig, RetryPolicy, Status
from jobbers.policy import FailureKind, backoff_delay, decide, fingerprint, start_retention

NOW = 1000.0
BOOM = ErrorInfo("ValueError", "boom")
LOST = ErrorInfo("LeaseLost", "worker w stopped renewing its lease")
STUCK = ErrorInfo("HeartbeatTimeout", "no heartbeat")


@pytest.mark.parametrize(
    ("policy", "kind", "error", "retries", "lost", "expected"),
    [
        # error retries spend max_retries, with backoff
        (RetryPolicy(max_retries=2, backoff="constant"), "failed", BOOM, 0, 0,
         (Status.SCHEDULED, 1, 0, NOW + 1.0, False)),
        (RetryPolicy(max_retries=2), "timeout", BOOM, 2, 0, (Status.FAILED, 2, 0, None, True)),
        (RetryPolicy(max_retries=2, dead_letter="drop"), "failed", BOOM, 2, 0,
         (Status.FAILED, 2, 0, None, False)),
        # retry_on filters the task's own errors, not a stuck heartbeat
        (RetryPolicy(max_retries=2, retry_on=("KeyError",)), "failed", BOOM, 0, 0,
         (Status.FAILED, 0, 0, None, True)),
        (RetryPolicy(max_retries=2, retry_on=("mod.ValueError",)), "failed", BOOM, 0, 0,
         (Status.SCHEDULED, 1, 0, NOW + 1.0, False)),
        (RetryPolicy(max_retries=1, retry_on=("KeyError",)), "stalled", STUCK, 0, 0,
         (Status.SCHEDULED, 1, 0, NOW + 1.0, False)),
        # lost leases requeue at once without spending max_retries, up to max_lost
        (RetryPolicy(max_retries=0), "lease_lost", LOST, 0, 0,
         (Status.SCHEDULED, 0, 1, NOW, False)),
        (RetryPolicy(max_retries=0, max_lost=3), "lease_lost", LOST, 0, 2,
         (Status.SCHEDULED, 0, 3, NOW, False)),
        (RetryPolicy(max_retries=5, max_lost=3), "lease_lost", LOST, 1, 3,
         (Status.FAILED, 1, 4, None, True)),
        (RetryPolicy(max_retries=5, max_lost=0, dead_letter="drop"), "lease_lost", LOST, 0, 0,
         (Status.FAILED, 0, 1, None, False)),
    ],
)  # fmt: skip
def test_decide(
    policy: RetryPolicy,
    kind: FailureKind,
    error: ErrorInfo,
    retries: int,
    lost: int,
    expected: tuple[Status, int, int, float | None, bool],
) -> None:
    d = decide(policy, kind, error, retries, lost, NOW)
    assert (d.status, d.retries, d.lost, d.due_at, d.dead) == expected
    assert d.reason.startswith(f"{error.type}: {error.message}")


def test_the_reason_for_too_many_lost_leases_says_so() -> None:
    d = decide(RetryPolicy(max_lost=1), "lease_lost", LOST, 0, 1, NOW)
    assert d.reason.endswith("(lost 2 attempt(s); max_lost is 1)")


@pytest.mark.parametrize(
    ("backoff", "base", "retries", "expected"),
    [
        ("constant", 2.0, [1, 2, 3], [2.0, 2.0, 2.0]),
        ("linear", 1.5, [1, 2, 3], [1.5, 3.0, 4.5]),
        ("exponential", 1.0, [1, 2, 3, 4, 10], [1.0, 2.0, 4.0, 5.0, 5.0]),
    ],
)
def test_backoff(backoff: str, base: float, retries: list[int], expected: list[float]) -> None:
    policy = RetryPolicy(backoff=backoff, base_delay=base, max_delay=5.0)  # type: ignore[arg-type]
    assert [backoff_delay(policy, r) for r in retries] == expected


def test_jitter_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(backoff="exponential_jitter", base_delay=4.0, max_delay=6.0)
    rng = random.Random(1)
    delays = [backoff_delay(policy, 3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 6.0 for d in delays)
    assert max(delays) > 5.0
    with pytest.raises(ValueError, match="start at 1"):
        backoff_delay(policy, 0)


def test_start_records_live_as_long_as_the_longest_rate_period() -> None:
    configs = [
        QueueConfig("a", rate_limit=1, rate_period=86400.0),
        QueueConfig("b", rate_period=999999.0),
    ]
    assert start_retention(configs) == 86400.0
    assert start_retention([]) == 3600.0


def test_fingerprint_ignores_key_order_and_priority_but_not_kwargs() -> None:
    a = NewTask("id", "t", {"x": 1, "y": [1, 2]}, priority=1)
    b = NewTask("id", "t", {"y": [1, 2], "x": 1}, priority=9)
    c = NewTask("id", "t", {"x": 2, "y": [1, 2]})
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert fingerprint(NewTask("id", "t", {}, queue="q")) != fingerprint(NewTask("id", "t", {}))
