"""One scenario, the same way for every fault and every backend: start the store and the
processes, submit a paced load through the Managers while a fault script runs, wait for the
tasks to end, then judge the history, the journals and the final store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobbers.store import open_store
from jobbers.store.base import Store, StoreUnavailable

from .checker import Journal, Verdict, completed_events, judge, read_records, wait_all_finished
from .cluster import Cluster
from .history import History, submit_paced, work_batches
from .netns import Network
from .stores import StoreHost


@dataclass
class Run:
    """What a fault script may use while the load runs."""

    net: Network
    cluster: Cluster
    store_host: StoreHost
    history: History
    store: Store
    started: float = field(default_factory=time.time)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    async def at(self, seconds: float) -> float:
        """Sleep until ``seconds`` after the load started; the wall-clock time then."""
        await asyncio.sleep(max(0.0, self.started + seconds - time.time()))
        return time.time()

    def journal(self) -> Journal:
        return Journal.read(self.cluster.journal_dir)

    def journal_for(self, host: str) -> dict[str, list[dict[str, Any]]]:
        """What bodies did on ``host`` (any of its worker processes), by task id."""
        return Journal.read(self.cluster.journal_dir, f"{host}-*.jsonl").lines

    def host_starts(self, host: str, after: float) -> list[float]:
        """Times bodies started on ``host`` (any of its worker processes) after ``after``."""
        lines = self.journal_for(host)
        starts = (x["t"] for ls in lines.values() for x in ls if x["e"] == "s")
        return sorted(t for t in starts if t > after)

    async def first_start_on(self, host: str, after: float, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            starts = self.host_starts(host, after)
            if starts:
                return starts[0] - after
            await asyncio.sleep(0.05)
        return None

    async def workers_listed(self, count: int, timeout: float = 30.0) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if len(await self.store.workers()) >= count:
                    return time.monotonic() - start
            except StoreUnavailable:
                pass
            await asyncio.sleep(0.05)
        return None


Fault = Callable[[Run], Awaitable[float | None]]


@dataclass
class Plan:
    name: str
    injected: str
    tasks: int
    over: float
    fault: Fault
    lease: float = 3.0
    timeout: float = 1.0
    #: Extra batches submitted at ``extra_at`` seconds (long bodies for the fault to catch).
    extra: list[list[dict[str, Any]]] = field(default_factory=list)
    extra_at: float = 0.0
    drain: float = 90.0
    #: Task names of the load, in turn.
    names: tuple[str, ...] = ("fault.work",)
    #: Task modules the Managers load ("": none, they accept what workers registered).
    manager_tasks: str = ""


async def run(
    plan: Plan, net: Network, store_host: StoreHost, workdir: Path, prefix: str
) -> tuple[Verdict, Run]:
    await asyncio.to_thread(store_host.start)
    cluster = Cluster(
        net,
        store_host.url(prefix, plan.timeout),
        workdir,
        lease=plan.lease,
        manager_tasks=plan.manager_tasks,
    )
    store = open_store(store_host.url(prefix, 5.0))
    try:
        await asyncio.to_thread(cluster.start)
        current = Run(net, cluster, store_host, History(), store)
        listed = await current.workers_listed(len(cluster.worker_hosts))
        assert listed is not None, cluster.logs()
        verdict = await _load_and_fault(plan, current)
        return verdict, current
    finally:
        net.heal_all()
        store_host.resume()
        await asyncio.to_thread(cluster.stop)
        await store.close()
        await asyncio.to_thread(store_host.stop)


async def _load_and_fault(plan: Plan, current: Run) -> Verdict:
    batches = work_batches(plan.tasks, names=plan.names)
    current.started = time.time()
    load = asyncio.create_task(
        submit_paced(current.history, current.cluster.manager_urls, batches, over=plan.over)
    )
    extra = asyncio.create_task(_extra(plan, current))
    recovery = await plan.fault(current)
    await asyncio.gather(load, extra)
    accepted = list(current.history.accepted)
    drained = await wait_all_finished(current.store, accepted, plan.drain)
    records = await read_records(current.store, accepted)
    feed = await completed_events(current.store)
    verdict = Verdict(plan.name, current.store_host.kind, plan.injected, len(accepted))
    verdict.recovery = recovery
    verdict.details["drained_s"] = round(drained, 2)
    verdict.details["took_s"] = round(time.time() - current.started, 2)
    verdict.details.update(current.facts)
    judge(verdict, current.history, records, feed, current.journal())
    verdict.notes = "; ".join(current.notes)
    return verdict


async def _extra(plan: Plan, current: Run) -> None:
    if plan.extra:
        await current.at(plan.extra_at)
        await submit_paced(
            current.history, current.cluster.manager_urls, plan.extra, over=0.0, parallel=2
        )
