"""Sending outcomes to the store in batches: whatever finished while a call was in flight goes
in the next call, so a busy worker makes one ``finish`` round trip for many tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobbers.models import TaskRecord
from jobbers.store.base import Report, Store, StoreIncompatible, StoreUnavailable
from jobbers.worker.outage import StoreOutage

log = logging.getLogger("jobbers.worker")

#: Give up on a batch the store keeps refusing after this many tries (each store call already
#: waits out lock contention), so that one poisoned report cannot block every later one. The
#: dropped tasks' leases are no longer renewed: they are reaped and run again, nothing is lost.
MAX_TRIES = 5


class ReportFlusher:
    def __init__(
        self,
        store: Store,
        worker_id: str,
        on_finished: Callable[[Report, TaskRecord | None], None],
        outage: StoreOutage,
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._on_finished = on_finished
        self._outage = outage
        self._queue: list[Report] = []
        self._in_flight: list[Report] = []
        self._wake = asyncio.Event()
        self._closing = False
        #: Reports sent in a call whose answer never came: the store may hold them already.
        self._unsure: set[tuple[str, int]] = set()

    def put(self, report: Report) -> None:
        self._queue.append(report)
        self._wake.set()

    def pending(self) -> dict[str, int]:
        """Reports not yet stored: their leases must still be renewed."""
        return {r.task_id: r.attempt for r in (*self._in_flight, *self._queue)}

    def close(self) -> None:
        """Flush what is queued, then let :meth:`run` return."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._in_flight, self._queue = self._queue, []
                try:
                    records = await self._store.finish(self._worker_id, self._in_flight)
                except Exception as exc:
                    if isinstance(exc, StoreUnavailable) and not isinstance(exc, StoreIncompatible):
                        # Not the reports' fault: keep them (and their leases) until it is back.
                        self._outage.failed("reporting", exc)
                        self._unsure.update((r.task_id, r.attempt) for r in self._in_flight)
                        self._queue[:0] = self._in_flight
                        self._in_flight = []
                        await asyncio.sleep(0.5)
                        continue
                    failures += 1
                    self._outage.failed(f"reporting {len(self._in_flight)} outcome(s)", exc)
                    if failures >= MAX_TRIES:
                        log.error(
                            "worker %s: dropped outcome(s) of %s; they will run again",
                            self._worker_id,
                            ", ".join(r.task_id for r in self._in_flight),
                        )
                        self._in_flight = []
                        failures = 0
                        continue
                    self._queue[:0] = self._in_flight
                    self._in_flight = []
                    await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                    continue
                failures = 0
                self._outage.answered()
                records = await self._recorded_before(self._in_flight, records)
                for report, record in zip(self._in_flight, records, strict=True):
                    self._on_finished(report, record)
                self._in_flight = []
            if self._closing:
                return

    async def _recorded_before(
        self, reports: list[Report], records: list[TaskRecord | None]
    ) -> list[TaskRecord | None]:
        """A report sent again after a call whose answer was lost is refused when that call
        stored it: the task then shows this worker's attempt ended with this outcome. Such a
        report was stored once, not fenced."""
        unsure = [
            r
            for r, rec in zip(reports, records, strict=True)
            if rec is None and (r.task_id, r.attempt) in self._unsure
        ]
        self._unsure.difference_update((r.task_id, r.attempt) for r in reports)
        if not unsure:
            return records
        try:
            found = await self._store.get([r.task_id for r in unsure])
        except Exception:
            return records
        stored = {r.task_id: found[r.task_id] for r in unsure if self._ended(r, found)}
        return [
            stored.get(r.task_id, rec) if rec is None else rec
            for r, rec in zip(reports, records, strict=True)
        ]

    def _ended(self, report: Report, found: dict[str, TaskRecord]) -> bool:
        record = found.get(report.task_id)
        if record is None:
            return False
        return any(
            a.number == report.attempt
            and a.worker == self._worker_id
            and a.outcome == report.outcome.kind
            and a.finished_at is not None
            for a in record.attempts
        )
