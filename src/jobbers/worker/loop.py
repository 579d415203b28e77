"""The worker: claim into free slots, run, renew leases, report, shut down without losing work.

Read :meth:`Worker.run` top to bottom: it is the operating model. Claiming, lease renewal,
reporting and maintenance are separate loops on one event loop, so a slow task never delays a
renewal and a full worker still learns of cancellations.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobbers import tracing
from jobbers.cancelling import cancel_until_done
from jobbers.catalog import TaskCatalog
from jobbers.firing import Firer
from jobbers.logfmt import log_task
from jobbers.models import ErrorInfo, Outcome, Status, TaskDefinition, TaskRecord, WorkerInfo
from jobbers.registry import (
    TaskContext,
    TaskSpec,
    UnknownTask,
    get_task,
    registered_names,
    worker_start_hooks,
)
from jobbers.store.base import Report, Store, StoreUnavailable
from jobbers.worker.execution import execute
from jobbers.worker.expiry import ExpiryWatch
from jobbers.worker.inputs import with_inputs
from jobbers.worker.leases import LeaseKeeper
from jobbers.worker.maintenance import Maintenance
from jobbers.worker.notes import NotesKeeper
from jobbers.worker.outage import StoreOutage
from jobbers.worker.reports import ReportFlusher
from jobbers.worker.settings import WorkerSettings, new_worker_id
from jobbers.worker.threads import SyncThreads

log = logging.getLogger("jobbers.worker")

StopReason = Literal["lost", "shutdown"]
#: Seconds the steps after the grace (hand back, last reports, unregister) may take: a worker
#: asked to stop always stops, even when the store stops answering.
CLEANUP_BOUND = 10.0
#: Seconds given to the helper loops (leases, maintenance, notes, reports) to stop once the
#: cleanup overran: cancelled helpers end at their next await, which a store call bounds.
HELPERS_BOUND = 2.0


@dataclass(eq=False)
class _Slot:
    """One running attempt."""

    record: TaskRecord
    ctx: TaskContext
    task: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None
    #: Monotonic time the lease ends, as far as this worker knows (the last call that set it).
    lease_until: float = float("inf")
    #: Stopped because its lease ran out unrenewed (said once per outage, not per task).
    expired: bool = False


class Worker:
    """Runs tasks from ``settings.queues`` until :meth:`request_stop`.

    ``request_stop`` stops claiming at once, lets running tasks finish for
    ``settings.shutdown_grace`` seconds, then cancels the rest and hands them back to the store
    (``submitted`` again, not a failure). A second request skips what is left of the grace.
    """

    def __init__(
        self, store: Store, settings: WorkerSettings | None = None, *, worker_id: str | None = None
    ) -> None:
        self.store = store
        self.settings = settings or WorkerSettings()
        self.id = worker_id or new_worker_id()
        self.hostname = socket.gethostname()
        self._running: dict[str, _Slot] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        #: Sync bodies in threads; an abandoned one holds its slot until it returns.
        self._threads = SyncThreads(on_release=self._wake.set)
        #: Whether the store answers; shared by every loop so that an outage is logged once.
        self.outage = StoreOutage(self.id)
        #: A store this worker cannot use (another schema): stop, and say so from :meth:`run`.
        self._fatal: StoreUnavailable | None = None
        self._cleanup_step = ""
        self._flusher = ReportFlusher(store, self.id, self._finished, self.outage)
        self._notes = NotesKeeper(store, self.id)
        self._lease_keeper = LeaseKeeper(
            store,
            self.id,
            self.settings.lease,
            self._renew_interval,
            self._leases,
            self._heartbeats,
            self._lost,
            self.outage,
            on_renewed=self._renewed,
            on_forgotten=self._register_again,
        )
        self._expiry = ExpiryWatch(self._deadlines, self._expired)
        #: Set while attempts expired unrenewed, until a renewal succeeds: one line per outage.
        self._expired_said = False
        self._started_at = time.time()
        #: Lifecycle events so far (completed, retry, dead, cancelled, handed_back, ...).
        self.counts: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        counts = "".join(f" {k}={v}" for k, v in sorted(self.counts.items()))
        return f"<Worker {self.id} running={len(self._running)}{counts}>"

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def busy_slots(self) -> int:
        """Running attempts plus abandoned sync bodies still running: what ``concurrency``
        bounds."""
        return len(self._running) + self._threads.abandoned

    def request_stop(self) -> None:
        """Begin a graceful stop; call from the event loop's thread (e.g. a signal handler)."""
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        await self._register()
        log.info(
            "worker %s: started on queue(s) %s, concurrency %d",
            self.id,
            ",".join(self.settings.queues),
            self.settings.concurrency,
        )
        maintenance = Maintenance(
            self.store,
            interval=self.settings.maintenance_interval,
            retention=self.settings.retention,
            prune_interval=self.settings.prune_interval,
            owner=f"worker {self.id}",
            on_error=lambda exc: self.outage.failed("maintenance", exc),
        )
        background = [
            asyncio.create_task(self._lease_keeper.run(), name="jobbers-leases"),
            asyncio.create_task(maintenance.run(), name="jobbers-maintenance"),
            asyncio.create_task(self._notes.run(), name="jobbers-notes"),
            *(
                asyncio.create_task(self._start_hook(hook), name="jobbers-start-hook")
                for hook in worker_start_hooks()
            ),
        ]
        if self.settings.fire_schedules:
            firer = Firer(
                self.store, TaskCatalog(self.store), interval=self.settings.schedule_interval
            )
            on_error = lambda exc: self.outage.failed("schedules", exc)  # noqa: E731
            background.append(asyncio.create_task(firer.run(on_error), name="jobbers-schedules"))
        flusher = asyncio.create_task(self._flusher.run(), name="jobbers-reports")
        for helper in (*background, flusher):
            helper.add_done_callback(self._helper_done)
        try:
            await self._claim_loop()
            await self._wait_for_running()
        finally:
            cleanup = asyncio.create_task(self._clean_up(flusher, background))
            done, _ = await asyncio.wait({cleanup}, timeout=CLEANUP_BOUND)
            if not done:
                # Not awaited: a task that swallows its cancel would hold the exit up again. The
                # helpers are stopped too, within a bound: a stopped worker must not go on
                # renewing leases or running maintenance behind its caller's back.
                cleanup.cancel()
                await cancel_until_done([flusher, *background], within=HELPERS_BOUND)
                log.error(
                    "worker %s: shutdown step %r took over %g s; stopping without it (tasks"
                    " whose outcome was not stored are reaped and run again)",
                    self.id,
                    self._cleanup_step,
                    CLEANUP_BOUND,
                )
            log.info("worker %s: stopped %r", self.id, self)
        if self._fatal is not None:
            raise self._fatal

    async def _start_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        name = getattr(hook, "__qualname__", repr(hook))
        try:
            await hook()
        except Exception:
            log.exception("worker %s: start hook %s failed; the worker goes on", self.id, name)

    async def _clean_up(
        self, flusher: asyncio.Task[None], background: list[asyncio.Task[None]]
    ) -> None:
        self._expiry.close()
        self._cleanup_step = "handing back running tasks"
        await self._hand_back_running()
        self._cleanup_step = "storing task log lines"
        await self._notes.flush()
        self._cleanup_step = "storing outcomes"
        self._flusher.close()
        await asyncio.gather(flusher, return_exceptions=True)
        self._cleanup_step = "stopping lease renewal, maintenance and notes"
        await cancel_until_done(background)
        self._cleanup_step = "unregistering"
        try:
            await self.store.unregister_worker(self.id)
        except StoreUnavailable as exc:
            log.warning("worker %s: could not unregister: %s", self.id, exc)
        except Exception:
            log.exception("worker %s: could not unregister", self.id)

    def _helper_done(self, helper: asyncio.Task[None]) -> None:
        """A helper loop that dies of a bug stops the worker loudly rather than leaving it half
        alive (claiming without renewing, say); unreported tasks are reaped and run again."""
        if helper.cancelled() or helper.exception() is None:
            return
        exc = helper.exception()
        if isinstance(exc, StoreUnavailable):
            log.error("worker %s: stopping: %s", self.id, exc)
            self._fatal = exc
        else:
            log.error(
                "worker %s: %s crashed; stopping",
                self.id,
                helper.get_name(),
                exc_info=exc,
            )
        self.request_stop()
        self.request_stop()

    def _registration(self) -> tuple[WorkerInfo, list[TaskDefinition]]:
        info = WorkerInfo(
            self.id,
            self.hostname,
            self.settings.queues,
            self._started_at,
            time.time(),
            self.running,
            self.settings.concurrency,
            tuple(sorted(registered_names())),
        )
        return info, [get_task(name).definition() for name in sorted(registered_names())]

    async def _register_again(self) -> None:
        info, definitions = self._registration()
        await self.store.register_worker(info, definitions)
        log.warning(
            "worker %s: the store no longer listed this worker (it lost its data, or dropped"
            " the worker as unseen); registered again with %d task definition(s)",
            self.id,
            len(definitions),
        )

    async def _register(self) -> None:
        while True:
            info, definitions = self._registration()
            try:
                await self.store.register_worker(info, definitions)
            except StoreUnavailable as exc:
                # A worker started before its store comes up waits for it.
                self.outage.failed("registration", exc)
                if self._stop.is_set():
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.settings.poll_cap)
                continue
            self.outage.answered()
            return

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        """Claim up to the free slots in one call; with nothing to claim, wait for the store."""
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            free = self.settings.concurrency - self.busy_slots
            if free <= 0:
                await self._wake.wait()
                continue
            asked = time.monotonic()
            try:
                records = await self.store.claim(
                    self.id,
                    self.settings.queues,
                    free,
                    self.settings.lease,
                    names=registered_names(),
                )
            except Exception as exc:
                self.outage.failed("claim", exc)
                failures = min(failures + 1, 16)
                await self._idle(min(0.1 * 2**failures, self.settings.poll_cap), watch=False)
                continue
            failures = 0
            self.outage.answered()
            for record in records:
                self._start(record, asked + self.settings.lease)
            if len(records) < free:
                await self._idle(self.settings.poll_cap, watch=True)

    async def _idle(self, timeout: float, *, watch: bool) -> None:
        """Sleep until a slot frees, a stop is requested, the store changes or ``timeout``."""
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
        if watch:
            waiters.append(asyncio.create_task(self.store.wait_for_change(timeout)))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        for waiter in done:
            if not waiter.cancelled() and (exc := waiter.exception()) is not None:
                assert isinstance(exc, Exception)
                self.outage.failed("waiting for a change", exc)

    def _start(self, record: TaskRecord, lease_until: float) -> None:
        spec: TaskSpec[..., Any] | None
        try:
            spec = get_task(record.name)
        except UnknownTask:
            spec = None
        stale = self._running.get(record.id)
        if stale is not None:
            # The store already retried an attempt we still run (stalled, reaped) and handed
            # the retry back to us before a renewal told us: the old attempt is not ours.
            self._lost({record.id: stale.record.attempt})
        ctx = TaskContext(record.id, record.attempt, self.id, self.hostname)
        slot = _Slot(record, ctx, lease_until=lease_until)
        self._running[record.id] = slot
        slot.task = asyncio.create_task(self._run_slot(slot, spec), name=f"jobbers:{record.id}")
        self._lease_keeper.kick()
        self._expiry.kick()
        log_task(log, logging.INFO, "claimed", record, self.id)

    async def _run_slot(self, slot: _Slot, spec: TaskSpec[..., Any] | None) -> None:
        record = slot.record
        try:
            ready = await self._with_inputs(record)
            if ready is None:
                outcome = Outcome("handed_back")
            else:
                with tracing.attempt_span(ready, self.id) as span:
                    notes = self._notes.begin(ready, slot.ctx)
                    outcome = notes.masked(
                        await self._notes.capture(
                            notes,
                            execute(
                                spec,
                                ready,
                                slot.ctx,
                                max_result_bytes=self.settings.max_result_bytes,
                                threads=self._threads,
                            ),
                        )
                    )
                    tracing.end_attempt(
                        span, outcome.kind, outcome.error.type if outcome.error else None
                    )
        except asyncio.CancelledError:
            if slot.stop_reason == "lost":
                self.counts["expired" if slot.expired else "cancelled"] += 1
                level = logging.DEBUG if slot.expired else logging.INFO
                log_task(log, level, "cancelled", record, self.id, None, " (no longer ours)")
                return
            current = asyncio.current_task()
            if slot.stop_reason is None and current is not None and not current.cancelling():
                # Nobody cancelled this attempt: the task's own code raised CancelledError.
                message = "the task raised CancelledError without being cancelled"
                outcome = Outcome("cancelled", error=ErrorInfo("CancelledError", message))
            else:
                outcome = Outcome("handed_back")
        finally:
            if self._running.get(record.id) is slot:
                del self._running[record.id]
            self._wake.set()
        if slot.stop_reason == "lost":
            return  # finished as the store took it away: the result is not ours to report
        self._flusher.put(Report(record.id, record.attempt, outcome))

    async def _with_inputs(self, record: TaskRecord) -> TaskRecord | None:
        """The record with its parents' results, or None when the store cannot give them now:
        the attempt is handed back (no retry spent) to run when it can."""
        if record.inputs is None:
            return record
        try:
            return await with_inputs(self.store, record)
        except StoreUnavailable as exc:
            self.outage.failed("reading a task's inputs", exc)
            return None

    # -- leases -----------------------------------------------------------------------------

    def _renew_interval(self) -> float:
        """Short enough to learn of a cancellation within ``renew_cap`` and to ship heartbeats
        well inside each running task's ``max_heartbeat_interval``; idle, just show liveness."""
        if not self._running and not self._flusher.pending():
            return self.settings.lease / 3
        interval = self.settings.renew_interval
        for slot in self._running.values():
            allowance = slot.record.policy.max_heartbeat_interval
            if allowance is not None and allowance > 0:
                interval = min(interval, allowance / 3)
        return interval

    def _leases(self) -> dict[str, int]:
        leases = self._flusher.pending()
        for task_id, slot in self._running.items():
            if slot.stop_reason != "lost":
                leases[task_id] = slot.record.attempt
        return leases

    def _heartbeats(self) -> dict[str, float]:
        return {
            task_id: slot.ctx.last_heartbeat
            for task_id, slot in self._running.items()
            if slot.ctx.last_heartbeat is not None
        }

    def _renewed(self, attempts: Mapping[str, int], at: float) -> None:
        until = at + self.settings.lease
        for task_id, attempt in attempts.items():
            slot = self._running.get(task_id)
            if slot is not None and slot.record.attempt == attempt:
                slot.lease_until = max(slot.lease_until, until)
        self._expired_said = False
        self._expiry.kick()

    def _deadlines(self) -> dict[str, tuple[int, float]]:
        return {
            task_id: (slot.record.attempt, slot.lease_until)
            for task_id, slot in self._running.items()
            if slot.stop_reason is None
        }

    def _expired(self, attempts: dict[str, int]) -> None:
        """No renewal reached the store for a whole lease: these attempts may already run
        elsewhere. Stop them as a cancel does and report nothing."""
        if not self._expired_said:
            self._expired_said = True
            log.warning(
                "worker %s: no lease renewal reached the store for %g s (a whole lease):"
                " stopping %d running task(s) unreported, as they may run elsewhere now;"
                " claiming again once the store answers",
                self.id,
                self.settings.lease,
                len(attempts),
            )
        for task_id in attempts:
            slot = self._running.get(task_id)
            if slot is not None:
                slot.expired = True
        self._lost(attempts)

    def _lost(self, attempts: dict[str, int]) -> None:
        """The store took these away (cancelled, reaped, stalled): stop them, report nothing."""
        for task_id, attempt in attempts.items():
            slot = self._running.get(task_id)
            if slot is None or slot.record.attempt != attempt or slot.stop_reason == "lost":
                continue
            slot.stop_reason = "lost"
            slot.ctx.cancel_requested = True
            if slot.task is not None:
                slot.task.cancel()

    # -- reporting --------------------------------------------------------------------------

    def _finished(self, report: Report, record: TaskRecord | None) -> None:
        """Log the status the store chose for a reported outcome; never kwargs or results."""
        if record is None:
            self.counts["fenced"] += 1
            log.warning(
                "task %s attempt %d: outcome %s discarded, worker %s no longer owns it",
                report.task_id,
                report.attempt,
                report.outcome.kind,
                self.id,
            )
            return
        event = {
            Status.SCHEDULED: "retry",
            Status.SUBMITTED: "handed_back",
        }.get(record.status, str(record.status))
        self.counts[event] += 1
        error = report.outcome.error
        log_task(
            log,
            logging.INFO if record.status == Status.COMPLETED else logging.WARNING,
            event.replace("_", " "),
            record,
            self.id,
            report.attempt,
            f": {error.type}: {error.message}" if error else "",
        )

    # -- shutdown ---------------------------------------------------------------------------

    async def _wait_for_running(self) -> None:
        """Let running tasks finish for up to the grace period (cut short by a second stop)."""
        if not self._running:
            return
        log.info(
            "worker %s: stopping; waiting up to %g s for %d running task(s)",
            self.id,
            self.settings.shutdown_grace,
            len(self._running),
        )
        deadline = time.monotonic() + self.settings.shutdown_grace
        while self._running and not self._hurry.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            hurry = asyncio.create_task(self._hurry.wait())
            wake = asyncio.create_task(self._wake.wait())
            await asyncio.wait(
                {hurry, wake}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            hurry.cancel()
            wake.cancel()

    async def _hand_back_running(self) -> None:
        """Cancel what still runs; each slot reports ``handed_back`` so the task runs again."""
        slots = [s for s in self._running.values() if s.task is not None]
        if not slots:
            return
        log.info("worker %s: handing back %d running task(s)", self.id, len(slots))
        for slot in slots:
            if slot.stop_reason is None:
                slot.stop_reason = "shutdown"
                slot.ctx.cancel_requested = True
            assert slot.task is not None
            slot.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*(s.task for s in slots if s.task), return_exceptions=True)
