"""Unit tests of the parts that need neither Airflow nor a running Manager."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

import pytest

from airflow_jobbers import protocol
from airflow_jobbers.states import Action, action_for, action_for_result, describe


def _jwt(claims: dict[str, object]) -> str:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{b64(claims)}.c2ln"


def _workload(token: str) -> dict[str, object]:
    return {
        "type": "ExecuteTask",
        "token": token,
        "ti": {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 1, "map_index": -1},
    }


@pytest.mark.parametrize(
    ("status", "maybe_duplicate", "action"),
    [
        ("submitted", False, Action.NONE),
        ("scheduled", False, Action.NONE),
        ("started", False, Action.RUNNING),
        ("completed", False, Action.SUCCESS),
        ("completed", True, Action.CHECK_RESULT),
        ("failed", False, Action.FAIL),
        ("stalled", False, Action.FAIL),
        ("dead", False, Action.FAIL),
        ("cancelled", False, Action.FAIL),
    ],
)
def test_status_mapping(status: str, maybe_duplicate: bool, action: Action) -> None:
    assert action_for(status, maybe_duplicate=maybe_duplicate) is action


def test_duplicate_result_reports_nothing() -> None:
    assert action_for_result({"outcome": "duplicate"}) is Action.FORGET
    assert action_for_result({"outcome": "finished", "exit_code": 0}) is Action.SUCCESS
    assert action_for_result(None) is Action.SUCCESS


def test_describe_is_short_and_has_the_reason() -> None:
    text = describe("failed", "lease lost " * 500, "host:1:ab")
    assert text.startswith("Jobbers job failed: lease lost")
    assert len(text) <= 1000


def test_token_expiry_reads_exp_without_verifying() -> None:
    assert protocol.token_expiry(_jwt({"exp": 1234})) == 1234.0
    assert protocol.token_expiry(_jwt({"sub": "x"})) is None
    assert protocol.token_expiry("not-a-jwt") is None
    assert protocol.token_expiry("a.!!!.c") is None


def test_summary_and_redact_never_show_the_token() -> None:
    token = _jwt({"exp": 1})
    workload = _workload(token)
    assert token not in protocol.workload_summary(workload)
    assert "dag_id=d task_id=t" in protocol.workload_summary(workload)
    assert token not in json.dumps(protocol.redact({"workload": workload}))


def test_scrub_hides_jwts_in_free_text() -> None:
    token = _jwt({"exp": 1, "sub": "x"})
    text = protocol.scrub(f"bad workload {{'token': '{token}'}} " + "x" * 1000)
    assert token not in text
    assert "***" in text
    assert len(text) == 500


def test_the_core_redacts_the_runner_kwargs() -> None:
    """The key name the runner's kwargs use is one the core's API/dashboard/log redaction masks."""
    jobbers_redact = pytest.importorskip("jobbers.redact")
    token = _jwt({"exp": 1})
    shown = jobbers_redact.redact({protocol.WORKLOAD_KWARG: _workload(token)})
    assert shown[protocol.WORKLOAD_KWARG][protocol.TOKEN_KEY] == "***"


runner = pytest.importorskip("airflow_jobbers.worker.runner", reason="needs the jobbers core")


def test_expired_workload_is_refused_before_anything_starts() -> None:
    with pytest.raises(runner.WorkloadExpired, match="expired"):
        runner.check_workload(_workload(_jwt({"exp": time.time() - 10})))
    runner.check_workload(_workload(_jwt({"exp": time.time() + 600})))


@pytest.mark.parametrize(
    "workload",
    [None, "ExecuteTask", {"type": "RunTrigger", "token": "x"}, {"type": "ExecuteTask"}],
)
def test_only_airflow_workloads_are_accepted(workload: object) -> None:
    with pytest.raises(runner.WorkloadRejected):
        runner.check_workload(workload)


def test_child_exit_codes_become_outcomes() -> None:
    marker = f"{protocol.RESULT_MARKER}1"
    assert runner.outcome_for(0, ["log", marker], "s") == {"outcome": "finished", "exit_code": 1}
    assert runner.outcome_for(protocol.EXIT_DUPLICATE, [], "s") == {"outcome": "duplicate"}
    with pytest.raises(runner.WorkloadExpired):
        runner.outcome_for(protocol.EXIT_EXPIRED, [], "s")
    with pytest.raises(runner.WorkloadRejected):
        runner.outcome_for(protocol.EXIT_INVALID, ["bad"], "s")
    with pytest.raises(runner.WorkloadProcessFailed, match="signal 9"):
        runner.outcome_for(-9, [], "s")


def test_child_gets_the_workload_on_stdin_not_argv() -> None:
    echo = (sys.executable, "-c", "import sys; print(len(sys.stdin.read())); print(sys.argv)")
    code, output = asyncio.run(runner.run_child(b"secret-payload", argv=echo))
    assert code == 0
    assert output[0] == str(len("secret-payload"))
    assert "secret-payload" not in output[1]


def test_cancellation_sends_sigterm_then_sigkill() -> None:
    stubborn = (
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('TERM', flush=True))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n",
    )

    async def scenario() -> float:
        task = asyncio.create_task(runner.run_child(b"", argv=stubborn, grace=0.5))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert elapsed < 10
