"""Which failures a policy retries: by name, by base class, never a final one."""

from __future__ import annotations

import pytest

from jobbers.models import ErrorInfo, RetryPolicy
from jobbers.policy import is_retryable

POLICY = RetryPolicy(max_retries=3, retry_on=("OSError", "app.errors.Transient"))


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ErrorInfo("OSError", "m"), True),
        (ErrorInfo("ConnectionResetError", "m", bases=("ConnectionError", "OSError")), True),
        (ErrorInfo("app.errors.Transient", "m"), True),
        (ErrorInfo("other.Transient", "m"), True),  # short names match, as stored policies do
        (ErrorInfo("app.errors.Slow", "m", bases=("app.errors.Transient", "Exception")), True),
        (ErrorInfo("ValueError", "m", bases=("Exception", "BaseException")), False),
        (ErrorInfo("OSError", "m", retryable=False), False),
    ],
)
def test_retry_on_matches_the_type_or_any_base(error: ErrorInfo, retried: bool) -> None:
    assert is_retryable(POLICY, error, 0) is retried


def test_no_retry_once_the_budget_is_spent() -> None:
    assert not is_retryable(POLICY, ErrorInfo("OSError", "m"), 3)


def test_a_final_error_is_not_retried_even_without_retry_on() -> None:
    policy = RetryPolicy(max_retries=3)
    assert is_retryable(policy, ErrorInfo("ValueError", "m"), 0)
    assert not is_retryable(policy, ErrorInfo("ResultTooLarge", "m", retryable=False), 0)


def test_error_info_round_trips_with_its_bases() -> None:
    error = ErrorInfo("E", "m", "tb", ("OSError",), retryable=False)
    assert ErrorInfo.from_json(error.to_json()) == error
    assert ErrorInfo.from_json({"type": "E", "message": "m"}) == ErrorInfo("E", "m")
