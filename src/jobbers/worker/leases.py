"""Keeping leases alive: one batched ``renew`` for every task this worker still owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from jobbers.store.base import Store

log = logging.getLogger("jobbers.worker")


class LeaseKeeper:
    """Renews all leases in one store call per tick and reports the attempts the store says we lost.

    Renewal is also how a worker learns that a running task was cancelled or reaped, hence the
    short tick while tasks run; an idle worker renews only to show it is alive.
    """

    def __init__(
        self,
        store: Store,
        worker_id: str,
        lease: float,
        busy_interval: float,
        leases: Callable[[], Mapping[str, int]],
        heartbeats: Callable[[], Mapping[str, float]],
        on_lost: Callable[[dict[str, int]], None],
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._lease = lease
        self._busy_interval = busy_interval
        self._leases = leases
        self._heartbeats = heartbeats
        self._on_lost = on_lost

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            leases = dict(self._leases())
            try:
                renewal = await self._store.renew(
                    self._worker_id, leases, self._lease, heartbeats=dict(self._heartbeats())
                )
            except Exception:
                log.exception("worker %s: lease renewal failed; retrying", self._worker_id)
            else:
                if renewal.lost:
                    # With the attempts renewed: a task may have been re-claimed meanwhile.
                    self._on_lost({task_id: leases[task_id] for task_id in renewal.lost})
            interval = self._busy_interval if leases else self._lease / 3
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
