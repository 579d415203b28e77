"""The store host fails under load: Redis killed (-9) and restarted with an append-only file
(``appendfsync always``, then ``everysec``), restarted empty (no persistence), and paused
(SIGSTOP) for 10 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .checker import Verdict, clean, settled
from .history import long_bodies
from .netns import Network
from .scenario import Plan, Run, run
from .stores import RedisHost

pytestmark = pytest.mark.anyio

FAULT_AT = 5.0


async def kill_and_restart(current: Run) -> float | None:
    """Recovery: from the restart command to the first submission accepted after it."""
    assert isinstance(current.store_host, RedisHost)
    killed = await current.at(FAULT_AT)
    await asyncio.to_thread(current.store_host.kill)
    current.facts["killed_at"] = killed
    restarted = time.time()
    await asyncio.to_thread(current.store_host.start)
    current.facts["up_after_s"] = round(time.time() - restarted, 2)
    return await _first_accepted(current, restarted)


async def _first_accepted(current: Run, after: float, timeout: float = 30.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = current.history.first_accepted_after(after)
        if first is not None:
            return first - after
        await asyncio.sleep(0.05)
    return None


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_redis_killed_and_restarted_with_aof(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict], fsync: str
) -> None:
    plan = Plan(
        f"Redis kill -9, restart (appendfsync {fsync})",
        f"Redis killed with SIGKILL at {FAULT_AT:g} s and started again at once",
        tasks=10_000,
        over=12.0,
        fault=kill_and_restart,
    )
    store = RedisHost(network, tmp_path / "redis", fsync=fsync)
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    killed = current.facts["killed_at"]
    ages = sorted(killed - current.history.accepted[t] for t in verdict.lost_ids)
    verdict.details["lost_answered_before_kill_s"] = [round(a, 3) for a in ages]
    verdict.notes = f"Redis up {current.facts['up_after_s']} s after the restart command"
    if ages:
        verdict.notes += (
            f"; lost submissions were answered {min(ages):.2f}-{max(ages):.2f} s before the kill"
        )
    verdicts.append(verdict)
    assert settled(verdict), verdict
    if fsync == "always":
        assert verdict.lost == 0, verdict
    else:
        # What the docs promise for everysec: at most about the last second before the crash.
        assert all(age <= 1.5 for age in ages), ages
    assert verdict.recovery is not None


async def restart_empty(current: Run) -> float | None:
    """Recovery: from the restart to the first accepted submission (the Managers have no task
    code: they accept a name only once a worker has registered it again)."""
    assert isinstance(current.store_host, RedisHost)
    await current.at(FAULT_AT)
    await asyncio.to_thread(current.store_host.kill)
    restarted = time.time()
    await asyncio.to_thread(current.store_host.start)
    current.facts["restarted_at"] = restarted
    current.facts["up_at"] = time.time()
    listed = await current.workers_listed(3)
    current.facts["workers_listed_s"] = None if listed is None else time.time() - restarted
    return await _first_accepted(current, restarted)


async def test_redis_restarted_empty(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict]
) -> None:
    lease = 3.0
    plan = Plan(
        "Redis restarted empty",
        f"Redis (no persistence) killed at {FAULT_AT:g} s and started again empty",
        tasks=3000,
        over=10.0,
        fault=restart_empty,
        lease=lease,
    )
    store = RedisHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    up = current.facts["up_at"]
    before = {t for t, at in current.history.accepted.items() if at < up}
    listed = current.facts["workers_listed_s"]
    gone = set(verdict.lost_ids)
    verdict.notes = (
        f"by design every task accepted before the restart is gone ({len(before)});"
        f" workers listed again {listed:.2f} s after it, submissions accepted again"
        f" {verdict.recovery:.2f} s after it, without restarting any process"
    )
    verdicts.append(verdict)
    assert listed is not None
    assert listed <= lease
    assert verdict.recovery is not None
    assert verdict.recovery <= lease
    assert gone <= before, "only what was accepted before the restart may be gone"
    after = [t for t in current.history.accepted if t not in before]
    assert after
    assert settled(verdict), verdict


async def pause_store(current: Run) -> float | None:
    """SIGSTOP Redis for 10 s; every answer a client got meanwhile is timed. Recovery: from
    SIGCONT to the first accepted submission."""
    paused = await current.at(FAULT_AT)
    current.store_host.pause()
    resumed = await current.at(FAULT_AT + 10.0)
    current.store_host.resume()
    current.facts["paused_at"] = paused
    current.facts["resumed_at"] = resumed
    return await _first_accepted(current, resumed)


async def test_redis_paused_10_s(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict]
) -> None:
    timeout = 1.0
    plan = Plan(
        "Redis paused 10 s",
        "Redis stopped (SIGSTOP) for 10 s, then continued; lease 15 s",
        tasks=3000,
        over=18.0,
        fault=pause_store,
        lease=15.0,
        timeout=timeout,
        extra=[long_bodies(8, 3000)],
        extra_at=FAULT_AT - 1.0,
    )
    store = RedisHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    paused, resumed = current.facts["paused_at"], current.facts["resumed_at"]
    during = [
        a for a in current.history.answers if paused + 0.05 <= a.sent and a.answered <= resumed
    ]
    slowest = max((a.answered - a.sent for a in during), default=0.0)
    codes = sorted({str(a.status) for a in during})
    records = verdict.details["lost_attempts"]
    verdict.details.update(answers_during=len(during), slowest_during_s=round(slowest, 3))
    verdict.notes = (
        f"{len(during)} answers during the stall, all {'/'.join(codes)}, slowest {slowest:.2f} s"
        f" (timeout {timeout:g} s); attempts lost to a re-sent call: {records}"
    )
    verdicts.append(verdict)
    assert clean(verdict), verdict
    assert during
    assert codes == ["503"], codes
    assert slowest <= timeout + 0.5
    assert verdict.bodies_twice == 0, "nothing ran twice: no call was sent again"
    assert records == 0
