"""Processes fail under load: a worker and a Manager killed (-9) and started again, and a worker
paused (SIGSTOP) past its lease, then continued."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from .checker import Verdict, clean
from .cluster import MANAGER_PORT
from .history import long_bodies
from .netns import Network, address
from .scenario import Plan, Run, run
from .stores import RedisHost

pytestmark = pytest.mark.anyio

LEASE = 3.0
FAULT_AT = 4.0
LONG = long_bodies(6, int(2 * LEASE * 1000))


async def kill_worker(current: Run) -> float | None:
    """w2 killed, started again 2 s later; recovery: from its start to its first body."""
    await current.at(FAULT_AT)
    await asyncio.to_thread(current.cluster.running("worker", "w2").kill)
    restarted = await current.at(FAULT_AT + 2.0)
    current.cluster.start_worker("w2")
    return await current.first_start_on("w2", restarted)


async def kill_manager(current: Run) -> float | None:
    """m1 killed, started again 2 s later; recovery: from its start to its /healthz 200."""
    await current.at(FAULT_AT)
    await asyncio.to_thread(current.cluster.running("manager", "m1").kill)
    restarted = await current.at(FAULT_AT + 2.0)
    current.cluster.start_manager("m1")
    url = f"http://{address('m1')}:{MANAGER_PORT}/healthz"
    async with httpx.AsyncClient(timeout=1.0) as http:
        while time.time() - restarted < 60:
            try:
                if (await http.get(url)).status_code == 200:
                    return time.time() - restarted
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    return None


async def pause_worker(current: Run) -> float | None:
    """w3 stopped (SIGSTOP) for two leases; recovery: from SIGCONT to its first new body."""
    current.facts["paused_at"] = await current.at(FAULT_AT)
    current.cluster.running("worker", "w3").pause()
    resumed = await current.at(FAULT_AT + 2 * LEASE)
    current.cluster.running("worker", "w3").resume()
    current.facts["resumed_at"] = resumed
    return await current.first_start_on("w3", resumed)


def after_resume(current: Run) -> tuple[int, int, float]:
    """Bodies w3 held when it was paused (their leases ran out during the pause): how many,
    how many reached their end once it was continued (a sync body already past its end when
    the process froze returns at once: a thread cannot be stopped), and the longest any of
    them went on running after the continue."""
    paused, resumed = current.facts["paused_at"], current.facts["resumed_at"]
    held = ended = 0
    longest = 0.0
    for lines in current.journal_for("w3").values():
        for start in (x for x in lines if x["e"] == "s" and x["t"] < paused):
            stops = [x for x in lines if x["a"] == start["a"] and x["e"] != "s"]
            if stops and stops[0]["t"] < paused:
                continue
            held += 1
            stop = stops[0]["t"] if stops else float("inf")
            ended += bool(stops) and stops[0]["e"] == "e"
            longest = max(longest, stop - resumed)
    return held, ended, longest


SCENARIOS = {
    "worker": Plan(
        "worker kill -9, restart",
        f"w2 killed with SIGKILL at {FAULT_AT:g} s, started again 2 s later",
        tasks=3000,
        over=10.0,
        fault=kill_worker,
        lease=LEASE,
        extra=[LONG],
        extra_at=FAULT_AT - 1.0,
    ),
    "manager": Plan(
        "Manager kill -9, restart",
        f"m1 killed with SIGKILL at {FAULT_AT:g} s, started again 2 s later",
        tasks=3000,
        over=10.0,
        fault=kill_manager,
        lease=LEASE,
    ),
    "paused worker": Plan(
        "worker paused past its lease",
        f"w3 stopped (SIGSTOP) at {FAULT_AT:g} s for {2 * LEASE:g} s (2 leases), then continued",
        tasks=3000,
        over=14.0,
        fault=pause_worker,
        lease=LEASE,
        extra=[LONG],
        extra_at=FAULT_AT - 1.0,
    ),
}


@pytest.mark.parametrize("which", sorted(SCENARIOS))
async def test_a_process_fails(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict], which: str
) -> None:
    plan = SCENARIOS[which]
    store = RedisHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    if which == "paused worker":
        held, ended, longest = after_resume(current)
        verdict.notes = (
            f"w3 held {held} bodies when paused; after SIGCONT all stopped within"
            f" {longest:.3f} s ({ended} sync bodies already past their end returned at once)"
        )
    verdicts.append(verdict)
    assert clean(verdict), verdict
    assert verdict.recovery is not None
    if which == "paused worker":
        assert held
        assert longest <= 0.5
