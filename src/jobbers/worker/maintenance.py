"""Maintenance duties that every worker runs: promote due tasks, reap lapsed leases and stalled
heartbeats, prune old finished tasks.

No extra process is needed for correctness. Any number of workers may run these at once: each
duty is one store transaction that only moves tasks still in the state it looked for, so a second
worker running it a moment later finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from jobbers.models import MaintenanceReport
from jobbers.store.base import Store

log = logging.getLogger("jobbers.worker.maintenance")


class Maintenance:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 1.0,
        retention: float = 7 * 86400.0,
        prune_interval: float = 60.0,
        owner: str = "",
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._retention = retention
        self._prune_interval = prune_interval
        self._owner = owner or "maintenance"
        self._next_prune = 0.0
        self._on_error = on_error

    async def run_once(self, now: float | None = None) -> MaintenanceReport:
        """One pass of every duty; ``prune`` only when its interval has passed."""
        now = time.time() if now is None else now
        promoted = await self._store.promote_due(now)
        report = await self._store.reap(now)
        pruned = 0
        if now >= self._next_prune:
            pruned = await self._store.prune(now - self._retention)
            self._next_prune = now + self._prune_interval
        summary = MaintenanceReport(
            promoted=promoted,
            reaped=report.reaped,
            stalled=report.stalled,
            pruned=pruned,
            expired=report.expired,
        )
        if summary.reaped or summary.stalled or summary.pruned or summary.expired:
            log.info(
                "%s: reaped %d expired lease(s), %d stalled heartbeat(s), pruned %d, promoted %d",
                self._owner,
                summary.reaped,
                summary.stalled,
                summary.pruned,
                summary.promoted,
            )
        return summary

    async def run(self) -> None:
        """Run forever (until cancelled); an error is logged and the next pass tries again."""
        while True:
            started = time.monotonic()
            try:
                await self.run_once()
            except Exception as exc:
                if self._on_error is None:
                    log.exception("%s: maintenance pass failed; trying again", self._owner)
                else:
                    self._on_error(exc)
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))
