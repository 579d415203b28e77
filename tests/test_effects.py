"""The effects table read as data: each step agrees with the state machine, the policy and the
stores' generated SQL and Lua. No store is opened here."""

from __future__ import annotations

import itertools
import re
from importlib import resources

import pytest

from jobbers import effects
from jobbers.effects import EFFECTS, Counter, Field
from jobbers.models import TERMINAL, TRANSITIONS, ErrorInfo, QueueConfig, RetryPolicy, Status
from jobbers.policy import FailureKind, decide
from jobbers.store.redis import tables
from jobbers.store.sqlite import counts

NOW = 1000.0
BOOM = ErrorInfo("ValueError", "boom")


@pytest.mark.parametrize("effect", list(EFFECTS.values()), ids=list(EFFECTS))
def test_every_step_is_an_allowed_transition_and_consistent(effect: effects.Effect) -> None:
    assert effect.sources
    assert all(effect.to in TRANSITIONS[source] for source in effect.sources)
    assert effect.ready == (effect.to is Status.SUBMITTED)
    assert (Field.DUE in effect.sets) == (effect.to is Status.SCHEDULED)
    assert not effect.finishes or effect.to in effects.FINAL
    assert not (effect.clears & effect.sets)
    assert (effect.reason is None) or (effect.given is None)
    assert effect.attempt_error <= (effect.attempt is not None)
    if effect.finishes or effect.ready or effect.to is Status.SCHEDULED:
        assert Field.LEASE in effect.clears or Status.STARTED not in effect.sources


def test_every_step_into_a_final_status_from_an_unfinished_one_finishes_the_task() -> None:
    for effect in EFFECTS.values():
        if effect.to in effects.FINAL and not effect.sources <= effects.FINAL:
            assert effect.finishes, effect.name


def test_the_finished_sets() -> None:
    assert effects.FINAL == TERMINAL
    assert effects.FINAL - {Status.CANCELLED} == effects.RAN


def test_a_resubmit_gives_fresh_budgets() -> None:
    assert effects.RESUBMIT.resets == {Counter.RETRIES, Counter.LOST}
    assert {Field.ERROR, Field.RESULT, Field.FINISHED, Field.DUE} <= effects.RESUBMIT.clears


@pytest.mark.parametrize("kind", ["failed", "timeout", "lease_lost", "stalled"])
@pytest.mark.parametrize(("retries", "lost"), [(0, 0), (1, 0), (0, 2), (2, 3)])
@pytest.mark.parametrize("max_retries", [0, 2])
def test_decisions_move_the_counters_the_table_says_they_spend(
    kind: FailureKind, retries: int, lost: int, max_retries: int
) -> None:
    policy = RetryPolicy(max_retries=max_retries, max_lost=2)
    d = decide(policy, kind, BOOM, retries, lost, NOW)
    spends = d.effect.spends
    assert d.retries == retries + (spends is Counter.RETRIES)
    assert d.lost == lost + (spends is Counter.LOST)
    assert d.status is d.effect.to
    assert d.steps == ((d.effect, effects.DEAD_LETTER) if d.dead else (d.effect,))
    assert all(a.to in b.sources for a, b in itertools.pairwise(d.steps))
    after = Status.STALLED if kind in ("lease_lost", "stalled") else Status.STARTED
    assert after in d.effect.sources


def test_the_reaped_steps_build_their_errors() -> None:
    assert effects.lease_lost_error("w1") == ErrorInfo(
        "LeaseLost", "worker w1 stopped renewing its lease (lost)"
    )
    assert effects.heartbeat_error(2.5) == ErrorInfo(
        "HeartbeatTimeout", "no heartbeat for more than 2.5 s"
    )
    assert effects.failure_error(None).type == "Error"
    assert effects.failure_error(BOOM) is BOOM


@pytest.mark.parametrize(
    ("config", "running", "recent", "expected"),
    [
        (QueueConfig("q"), 50, 50, 10),
        (QueueConfig("q", paused=True), 0, 0, 0),
        (QueueConfig("q", concurrency=3), 1, 0, 2),
        (QueueConfig("q", concurrency=3), 5, 0, 0),
        (QueueConfig("q", rate_limit=4), 0, 3, 1),
        (QueueConfig("q", concurrency=8, rate_limit=4), 6, 0, 2),
        (QueueConfig("q", concurrency=3, rate_limit=4), 2, 3, 1),
        (QueueConfig("q", concurrency=3, rate_limit=4), 3, 0, 0),
    ],
)
def test_room_counts_only_what_a_set_cap_needs(
    config: QueueConfig, running: int, recent: int, expected: int
) -> None:
    asked: list[str] = []

    def used(cap: effects.Cap) -> int:
        asked.append(cap.used)
        return {"running": running, "recent_starts": recent}[cap.used]

    assert effects.room(config, 10, used) == expected
    limits = {cap.used for cap in effects.CAPS if getattr(config, cap.limit) is not None}
    assert set(asked) <= limits
    assert expected > 0 or config.paused or asked


def test_the_sql_status_sets_come_from_the_table_in_a_stable_order() -> None:
    assert counts.FINAL == "('completed', 'failed', 'cancelled', 'dead')"
    assert counts.RAN == "('completed', 'failed', 'dead')"


def _scripts() -> dict[str, str]:
    folder = resources.files("jobbers.store.redis") / "lua"
    return {p.name: p.read_text() for p in folder.iterdir() if p.name.endswith(".lua")}


def test_no_lua_script_hard_codes_a_reason_or_a_next_status() -> None:
    reasons = [e.reason for e in EFFECTS.values() if e.reason is not None]
    for name, text in _scripts().items():
        assert not [r for r in reasons if f"'{r}'" in text], name
        assert not re.search(r"\bmove\([^,]+,[^,]+,\s*'", text), name
        assert "FINAL = {" not in text, name
        assert "RAN = {" not in text, name


def test_the_generated_lua_holds_every_step() -> None:
    lua = tables.prelude()
    for name, effect in EFFECTS.items():
        assert f"name == '{name}' then\n    e = {{to = '{effect.to}'" in lua
    assert "local FINAL = {completed = true, failed = true, cancelled = true, dead = true}" in lua
    assert "caps = {{limit = 'concurrency', used = 'running'}" in lua
