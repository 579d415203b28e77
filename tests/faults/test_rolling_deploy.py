"""A rolling deploy that adds a task: the Managers already have the new release, the three
workers are restarted with it one at a time (SIGTERM, then started again) while the new task
is submitted. No task fails or dies for lack of code: until a worker that has it runs, the new
task waits, and the queue says how many wait that no live worker can run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from .checker import Verdict, clean
from .netns import Network
from .scenario import Plan, Run, run
from .stores import RedisHost

pytestmark = pytest.mark.anyio

NEW = "fault.new_work"
RELEASE = "tests.faults.fault_tasks_v2"
FIRST_AT = 4.0
EVERY = 3.0


async def roll(current: Run) -> float | None:
    """Each worker in turn: SIGTERM, then started with the new release. Recovery: from the
    first new worker's start to the queue showing nothing unrunnable."""
    watch = asyncio.create_task(_watch_unrunnable(current))
    first = None
    try:
        for i, host in enumerate(("w1", "w2", "w3")):
            await current.at(FIRST_AT + i * EVERY)
            await asyncio.to_thread(current.cluster.running("worker", host).stop)
            current.cluster.start_worker(host, tasks=RELEASE)
            first = first or time.time()
        await current.at(FIRST_AT + 3 * EVERY)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    seen = current.facts["unrunnable_seen"]
    assert first is not None
    cleared = [at for at, n in seen if at > first and n == 0]
    return (cleared[0] - first) if cleared else None


async def _watch_unrunnable(current: Run) -> None:
    """What ``GET /queues`` said, every 0.2 s: (time, tasks no live worker can run)."""
    seen: list[tuple[float, int]] = []
    current.facts["unrunnable_seen"] = seen
    url = current.cluster.manager_urls[0]
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            try:
                queues = (await http.get(f"{url}/queues")).json()["queues"]
                waiting = sum(sum(q["unrunnable"].values()) for q in queues)
                seen.append((time.time(), waiting))
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            await asyncio.sleep(0.2)


async def test_a_rolling_deploy_that_adds_a_task(
    network: Network, tmp_path: Path, prefix: str, verdicts: list[Verdict]
) -> None:
    plan = Plan(
        "rolling deploy adding a task",
        f"3 workers restarted one at a time, {EVERY:g} s apart, with a release that adds"
        f" {NEW} (submitted from the start; Managers have the release)",
        tasks=3000,
        over=14.0,
        fault=roll,
        names=("fault.work",) * 9 + (NEW,),
        manager_tasks=RELEASE,
    )
    store = RedisHost(network, tmp_path / "redis")
    verdict, current = await run(plan, network, store, tmp_path, prefix)
    seen = current.facts.pop("unrunnable_seen")
    most = max((n for _, n in seen), default=0)
    verdict.notes = (
        f"GET /queues showed up to {most} {NEW} tasks that no live worker could run before the"
        " first new worker; none failed for lack of code"
    )
    verdicts.append(verdict)
    assert clean(verdict), verdict
    assert most > 0, "the queue showed the tasks no worker could run"
    assert seen[-1][1] == 0
    assert verdict.recovery is not None
