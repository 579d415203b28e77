"""A worker host cut off from every other host for three leases while tasks flow: it stops what
it runs within one lease of the cut, its late results are refused, every task completes once,
and it claims again within 2 s of the heal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .checker import Verdict, clean
from .history import long_bodies
from .netns import Network
from .scenario import Plan, Run, run
from .stores import RedisHost

pytestmark = pytest.mark.anyio

LEASE = 3.0
CUT_AT = 4.0


async def cut_one_worker(current: Run) -> float | None:
    """w1 is cut for 3 leases; recovery: from the heal to its first new body."""
    cut = await current.at(CUT_AT)
    current.net.cut("w1")
    current.facts["cut_at"] = cut
    healed = await current.at(CUT_AT + 3 * LEASE)
    current.net.heal("w1")
    current.facts["healed_at"] = healed
    return await current.first_start_on("w1", healed)


def overran(current: Run, cut: float) -> list[float]:
    """How long after the cut each body that w1 started before it went on running."""
    journal = current.journal()
    worker = _worker_id(current, "w1")
    out = []
    for lines in journal.lines.values():
        mine = [x for x in lines if x["w"] == worker]
        for start in (x for x in mine if x["e"] == "s" and x["t"] < cut):
            stops = [x["t"] for x in mine if x["e"] in "ec" and x["a"] == start["a"]]
            if not stops:
                out.append(float("inf"))
            elif stops[0] > cut:
                out.append(stops[0] - cut)
    return out


def _worker_id(current: Run, host: str) -> str:
    log = current.cluster.last("worker", host).log.read_text()
    found = re.search(r"worker (\S+): started on queue", log)
    assert found, log
    return found.group(1)


def refused_late(current: Run) -> int:
    log = current.cluster.last("worker", "w1").log.read_text()
    return log.count("no longer owns it")


async def test_a_partitioned_worker(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict]
) -> None:
    plan = Plan(
        "partition one worker of three",
        f"w1 cut from all hosts for {3 * LEASE:g} s (3 leases of {LEASE:g} s)",
        tasks=5000,
        over=18.0,
        fault=cut_one_worker,
        lease=LEASE,
        extra=[long_bodies(15, int(2 * LEASE * 1000))],
        extra_at=CUT_AT - 1.5,
    )
    store = RedisHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    late = overran(current, current.facts["cut_at"])
    verdict.details["overran_s"] = sorted(late)[-5:]
    verdict.notes = (
        f"w1 bodies running at the cut: {len(late)}, longest ran {max(late, default=0):.2f} s"
        f" past it; w1 results refused after the heal: {refused_late(current)}"
    )
    verdicts.append(verdict)
    print(verdict)
    assert clean(verdict), verdict
    assert late, "w1 held bodies at the cut"
    assert max(late) <= LEASE + 0.5, late
    assert verdict.recovery is not None
    assert verdict.recovery <= 2.0
