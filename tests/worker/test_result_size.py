"""Results over the worker's cap fail their attempt for good, and cost the worker no memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store

from .conftest import Spawn, one_task
from .support import new_task, submit, wait_statuses

pytestmark = pytest.mark.anyio

MIB = 1 << 20


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in bytes."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    return found


@pytest.mark.parametrize("name", ["wt.big_result", "wt.isolated_big_result"])
async def test_a_result_over_the_cap_fails_without_a_retry(
    store: Store, spawn: Spawn, log: Path, name: str
) -> None:
    _, ids = await one_task(store, spawn, log, name, mib=2)
    record = (await wait_statuses(store, ids, {Status.DEAD}, 15))[ids[0]]
    assert len(record.attempts) == 1, "max_retries=2, but no retry can shrink the result"
    assert record.error is not None
    assert record.error.type == "ResultTooLarge"
    assert record.error.retryable is False
    assert "larger than the cap of 1048576 bytes" in record.error.message
    assert record.result is None


async def test_a_result_under_the_cap_is_kept(store: Store, spawn: Spawn, log: Path) -> None:
    _, ids = await one_task(store, spawn, log, "wt.big_result", mib=0)
    record = (await wait_statuses(store, ids, {Status.COMPLETED}, 10))[ids[0]]
    assert record.result == ""


async def test_fifty_mebibyte_results_leave_the_workers_memory_bounded(
    store: Store, spawn: Spawn, log: Path
) -> None:
    """Eight 50 MiB results, two at a time: the worker's peak memory grows by about what two
    bodies build, not by what all eight returned, and falls back once they are refused."""
    worker = spawn(concurrency=2)
    await worker.registered(store)
    before = memory(worker.pid)
    ids = await submit(store, [new_task("wt.big_result", mib=50, log=str(log)) for _ in range(8)])
    await wait_statuses(store, ids, {Status.DEAD}, 60)
    after = memory(worker.pid)
    peak_growth = after["VmHWM"] - before["VmRSS"]
    kept = after["VmRSS"] - before["VmRSS"]
    print(
        f"worker RSS before {before['VmRSS'] / MIB:.0f} MiB, peak {after['VmHWM'] / MIB:.0f} MiB,"
        f" after {after['VmRSS'] / MIB:.0f} MiB (8 results of 50 MiB refused)"
    )
    assert peak_growth < 2 * 50 * MIB + 60 * MIB
    assert kept < 30 * MIB
