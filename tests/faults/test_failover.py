"""Redis Sentinel fails the primary over mid-run: Managers answer 503 (never 500) while it
happens and recover by themselves, nothing is completed twice, and with ``wait_replicas=1``
(``WAIT`` for one replica before a submission is answered) no accepted submission is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .checker import Verdict, clean
from .netns import Network
from .scenario import Plan, Run, run
from .stores import SentinelHost

pytestmark = pytest.mark.anyio

FAULT_AT = 5.0


async def kill_primary(current: Run) -> float | None:
    """kill -9 the primary; recovery: from the kill to the first submission accepted after
    the Sentinels named a new primary."""
    assert isinstance(current.store_host, SentinelHost)
    old = current.store_host.primary()
    killed = await current.at(FAULT_AT)
    await asyncio.to_thread(current.store_host.kill)
    current.facts["killed_at"] = killed
    while time.time() - killed < 30:
        new = await asyncio.to_thread(current.store_host.primary)
        if new is not None and new != old:
            current.facts["promoted_s"] = round(time.time() - killed, 2)
            break
        await asyncio.sleep(0.1)
    while time.time() - killed < 60:
        first = current.history.first_accepted_after(killed)
        if first is not None:
            return first - killed
        await asyncio.sleep(0.05)
    return None


async def test_a_sentinel_failover(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict]
) -> None:
    plan = Plan(
        "Sentinel failover",
        f"the primary killed with SIGKILL at {FAULT_AT:g} s; 3 Sentinels (quorum 2) promote one"
        " of 2 replicas; wait_replicas=1",
        tasks=5000,
        over=14.0,
        fault=kill_primary,
    )
    store = SentinelHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    killed = current.facts["killed_at"]
    during = [a for a in current.history.answers if a.sent >= killed]
    codes = sorted({str(a.status) for a in during})
    verdict.notes = (
        f"new primary named {current.facts.get('promoted_s')} s after the kill; answers from"
        f" then on: {', '.join(codes)}"
    )
    verdicts.append(verdict)
    assert clean(verdict), verdict
    assert "500" not in codes
    assert set(codes) <= {"201", "503", "None"}, codes
    assert verdict.recovery is not None
