"""Keeping leases alive: one batched ``renew`` for every task this worker still owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from jobbers.store.base import ANY_TASK, Store
from jobbers.worker.outage import StoreOutage

log = logging.getLogger("jobbers.worker")


class LeaseKeeper:
    """Renews all leases in one store call per tick; reports the attempts the store took away.

    Renewal is also how a worker learns that a running task was cancelled or reaped and how task
    heartbeats reach the store, so the tick (``interval()``, asked anew after every renewal and
    every :meth:`kick`) is short while tasks run and long while the worker is idle.
    """

    def __init__(
        self,
        store: Store,
        worker_id: str,
        lease: float,
        interval: Callable[[], float],
        leases: Callable[[], Mapping[str, int]],
        heartbeats: Callable[[], Mapping[str, float]],
        on_lost: Callable[[dict[str, int]], None],
        outage: StoreOutage,
        on_renewed: Callable[[Mapping[str, int], float], None] = lambda _leases, _at: None,
        on_forgotten: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._lease = lease
        self._interval = interval
        self._leases = leases
        self._heartbeats = heartbeats
        self._on_lost = on_lost
        self._outage = outage
        self._on_renewed = on_renewed
        self._on_forgotten = on_forgotten
        self._kicked = asyncio.Event()

    def kick(self) -> None:
        """The interval may have shrunk (a task started): re-plan the next renewal."""
        self._kicked.set()

    async def run(self) -> None:
        while True:
            renewed = time.monotonic()
            leases = dict(self._leases())
            try:
                renewal = await self._store.renew(
                    self._worker_id, leases, self._lease, heartbeats=dict(self._heartbeats())
                )
            except Exception as exc:
                self._outage.failed("lease renewal", exc)
            else:
                self._outage.answered()
                lost = set(renewal.lost)
                # Leases run from when the call was sent: the store's clock read no earlier.
                self._on_renewed({t: n for t, n in leases.items() if t not in lost}, renewed)
                if lost:
                    # With the attempts renewed: a task may have been re-claimed meanwhile.
                    self._on_lost({task_id: leases[task_id] for task_id in renewal.lost})
                if not renewal.registered:
                    await self._register_again()
            while (remaining := renewed + self._interval() - time.monotonic()) > 0:
                self._kicked.clear()
                if await self._heard_cancel(remaining):
                    break

    async def _register_again(self) -> None:
        """The store forgot this worker (it lost its data, or dropped the worker as unseen):
        without its entry and task definitions a Manager without task code refuses every
        submission, so the worker puts them back; a failure is tried again next renewal."""
        if self._on_forgotten is None:
            return
        try:
            await self._on_forgotten()
        except Exception as exc:
            self._outage.failed("registering again", exc)

    async def _heard_cancel(self, timeout: float) -> bool:
        """Wait for a kick or ``timeout``; True at once when the store announces that one of
        this worker's tasks was cancelled, so the next renewal (which stops it) runs now."""
        kicked = asyncio.create_task(self._kicked.wait())
        heard = asyncio.create_task(self._store.wait_for_cancel(timeout))
        try:
            done, _ = await asyncio.wait(
                {kicked, heard}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (kicked, heard):
                waiter.cancel()
            await asyncio.gather(kicked, heard, return_exceptions=True)
        if heard not in done or heard.cancelled() or heard.exception() is not None:
            return False
        cancelled = set(heard.result())
        return ANY_TASK in cancelled or bool(cancelled & set(self._leases()))
