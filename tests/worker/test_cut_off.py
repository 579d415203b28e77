"""A worker cut off from its store stops its own attempts once their lease has run out
unrenewed (async and sync, as a cancel does), reports nothing for them, says so in one line and
claims again when the store answers; an outcome whose answer was lost is not taken for a fenced
one when it is sent again; a worker the store forgot registers again by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store.base import Store
from jobbers.worker import Worker, WorkerSettings

from ..conftest import StoreFactory
from .cut_store import CutStore
from .support import events, new_task, submit, wait_for, wait_statuses

pytestmark = pytest.mark.anyio

LEASE = 1.0
SETTINGS = WorkerSettings(
    concurrency=4, lease=LEASE, poll_cap=0.05, maintenance_interval=0.05, shutdown_grace=0.5
)
SAID = "no lease renewal reached the store"


async def _true(value: bool) -> bool:
    return value


def lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def test_a_cut_off_worker_stops_its_attempts_after_one_lease_and_claims_again(
    make_store: StoreFactory, log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client: Store = make_store()
    link = CutStore(make_store())
    worker = Worker(link, SETTINGS)
    caplog.set_level(logging.INFO, logger="jobbers")
    running = asyncio.create_task(worker.run())
    try:
        ids = await submit(
            client,
            [
                new_task("wt.sleep_async", seconds=30, log=str(log)),
                new_task("wt.sleep_async", seconds=30, log=str(log)),
                new_task("wt.sync_until_stopped", seconds=30, log=str(log)),
            ],
        )
        await wait_for(lambda: _true(len(events(log, "start")) == 3), 10, "three bodies to start")
        cut_at = time.time()
        link.cut = True
        await wait_for(
            lambda: _true(len(events(log, "cancelled")) + len(events(log, "stopped")) == 3),
            LEASE + 3,
            "the cut-off worker to stop its three bodies",
        )
        stops = [e["at"] - cut_at for e in (*events(log, "cancelled"), *events(log, "stopped"))]
        # Each lease ran from the last renewal before the cut (renewals come every lease / 3).
        assert all(LEASE - SETTINGS.renew_interval - 0.05 <= s <= LEASE + 0.3 for s in stops), stops
        assert len(lines(caplog, SAID)) == 1
        assert worker.counts["expired"] == 3

        # Another worker's maintenance takes the tasks back once their leases have lapsed.
        await wait_for(
            lambda: _reaped(client, ids), 5, "the lapsed leases to be reaped by another process"
        )
        link.cut = False
        healed = time.monotonic()
        await wait_for(
            lambda: _true(len([e for e in events(log, "start") if e["attempt"] == 2]) == 3),
            5,
            "the worker to claim the three tasks again",
        )
        assert time.monotonic() - healed < 2.0
        records = await client.get(ids)
        for record in records.values():
            first = record.attempts[0]
            assert first.outcome == "lease_lost", "the stopped attempt reported nothing itself"
        assert len(lines(caplog, SAID)) == 1
    finally:
        link.cut = False
        worker.request_stop()
        worker.request_stop()
        await asyncio.wait_for(running, 15)


async def _reaped(client: Store, ids: list[str]) -> bool:
    await client.reap()
    found = await client.get(ids)
    return all(r.attempts and r.attempts[0].outcome == "lease_lost" for r in found.values())


async def test_an_outcome_sent_again_after_its_answer_was_lost_counts_once(
    make_store: StoreFactory, log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client: Store = make_store()
    link = CutStore(make_store())
    link.lose_answers["finish"] = 1
    worker = Worker(link, SETTINGS)
    caplog.set_level(logging.INFO, logger="jobbers")
    running = asyncio.create_task(worker.run())
    try:
        ids = await submit(client, [new_task("wt.mark", log=str(log))])
        await wait_statuses(client, ids, {Status.COMPLETED}, 10)
        await wait_for(lambda: _true(worker.counts["completed"] == 1), 5, "the outcome counted")
        assert link.calls["finish"] >= 2, "the outcome was sent again"
        assert worker.counts["fenced"] == 0
        assert not lines(caplog, "discarded")
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)


async def test_a_worker_the_store_dropped_registers_again_within_one_lease(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(store, SETTINGS)
    caplog.set_level(logging.INFO, logger="jobbers")
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: _listed(store, worker.id), 5, "the worker to register")
        # A maintenance pass far in the future drops it as unseen (a paused VM, say).
        await store.reap(now=time.time() + 3600)
        assert not await _listed(store, worker.id)
        took = await wait_for(lambda: _listed(store, worker.id), 5, "the worker to come back")
        assert took <= LEASE

        async def said() -> bool:  # logged just after the store answered the registration
            return bool(lines(caplog, "registered again"))

        await wait_for(said, 5, "the worker to say it registered again")
        assert len(lines(caplog, "registered again")) == 1
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)


async def _listed(store: Store, worker_id: str) -> bool:
    return worker_id in {w.id for w in await store.workers()}
