"""Progress and log lines from inside running tasks, shipped to the store in batches.

One ``logging`` handler on the root logger routes each record to the attempt that emitted it,
found through a context variable that the worker sets around each attempt (a sync task's thread
inherits it). While an attempt runs, the values of its secret-named kwargs are masked in every
record it logs, whichever handler writes it. Each attempt keeps at most :data:`MAX_LINES` lines
and :data:`MAX_BYTES` bytes, so a chatty task cannot fill the store. A timer sends what is new
(lines, changed progress) for every attempt in one store call; the store fences by attempt, so
lines of an attempt that was taken away are dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from jobbers.models import ErrorInfo, Outcome, TaskRecord
from jobbers.redact import MASK, SECRET_KEYS
from jobbers.registry import TaskContext
from jobbers.store.base import AttemptNotes, LogLine, Store

log = logging.getLogger("jobbers.worker")
T = TypeVar("T")

MAX_LINES = 200
MAX_BYTES = 64 * 1024
#: One line longer than this is cut: a dumped blob should not use up the attempt's budget.
MAX_LINE = 4096
FLUSH_INTERVAL = 0.5

_CURRENT: contextvars.ContextVar[AttemptLog | None] = contextvars.ContextVar(
    "jobbers_attempt_log", default=None
)


def _secret_values(value: Any, secret: bool = False) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_values(item, secret or str(key).lower() in SECRET_KEYS)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item, secret)
    elif secret and value is not None and len(str(value)) >= 4:
        yield str(value)


class AttemptLog:
    """The lines and progress of one attempt not yet sent; written from any thread."""

    def __init__(self, record: TaskRecord, ctx: TaskContext) -> None:
        self.task_id = record.id
        self.attempt = record.attempt
        self.ctx = ctx
        self.secrets = sorted(set(_secret_values(record.kwargs)), key=len, reverse=True)
        self._lock = threading.Lock()
        self._pending: list[LogLine] = []
        self._lines = 0
        self._bytes = 0
        self._capped = False
        self._sent_progress: tuple[float, str] | None = None
        self.finished = False

    def mask(self, message: str) -> str:
        for secret in self.secrets:
            message = message.replace(secret, MASK)
        return message

    def masked(self, outcome: Outcome) -> Outcome:
        """The outcome with secret kwarg values masked in its error (message and traceback)."""
        error = outcome.error
        if error is None or not self.secrets:
            return outcome
        masked = ErrorInfo(error.type, self.mask(error.message), self.mask(error.traceback))
        return dataclasses.replace(outcome, error=masked)

    def add(self, at: float, level: str, message: str) -> None:
        message = self.mask(message)
        if len(message) > MAX_LINE:
            message = message[:MAX_LINE] + " ..."
        size = len(message.encode("utf-8", "replace"))
        with self._lock:
            if self._capped:
                return
            if self._lines + 1 >= MAX_LINES or self._bytes + size > MAX_BYTES:
                self._capped = True
                message, level = f"log capped at {MAX_LINES} lines / {MAX_BYTES} bytes", "WARNING"
            self._lines += 1
            self._bytes += size
            self._pending.append(LogLine(at, level, message))

    def take(self) -> AttemptNotes | None:
        with self._lock:
            lines, self._pending = self._pending, []
        progress = self.ctx.last_progress
        changed = progress is not None and progress != self._sent_progress
        if not lines and not changed:
            return None
        self._sent_progress = progress
        fraction, message = progress if changed and progress else (None, "")
        return AttemptNotes(self.task_id, self.attempt, fraction, message, tuple(lines))


def _masking_factory(
    make: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Record factory that masks the running attempt's secret kwarg values in the message, so
    that no handler (the process log included) ever sees them."""

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        target = _CURRENT.get()
        if target is not None and target.secrets:
            try:
                message = record.getMessage()
            except Exception:
                return record
            record.msg, record.args = target.mask(message), None
        return record

    return factory


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        target = _CURRENT.get()
        if target is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:
            message = f"<unformattable log record from {record.name}>"
        target.add(record.created, record.levelname, message)


class NotesKeeper:
    """Owns the capture handler while the worker runs and sends notes every ``interval``."""

    def __init__(self, store: Store, worker_id: str, interval: float = FLUSH_INTERVAL) -> None:
        self._store = store
        self._worker_id = worker_id
        self._interval = interval
        self._attempts: list[AttemptLog] = []
        self._handler = _Capture()

    def begin(self, record: TaskRecord, ctx: TaskContext) -> AttemptLog:
        attempt = AttemptLog(record, ctx)
        self._attempts.append(attempt)
        return attempt

    async def capture(self, attempt: AttemptLog, work: Awaitable[T]) -> T:
        """Await ``work`` with its log records going to ``attempt``; then mark it finished."""
        token = _CURRENT.set(attempt)
        try:
            return await work
        finally:
            _CURRENT.reset(token)
            attempt.finished = True

    async def flush(self) -> None:
        done = {id(a) for a in self._attempts if a.finished}
        notes = [n for a in self._attempts if (n := a.take()) is not None]
        self._attempts = [a for a in self._attempts if id(a) not in done]
        if not notes:
            return
        try:
            await self._store.add_notes(self._worker_id, notes)
        except Exception as exc:
            # Progress and lines are for people watching; losing a batch never stops the work.
            log.warning("worker %s: could not store task log lines: %r", self._worker_id, exc)

    async def run(self) -> None:
        root = logging.getLogger()
        root.addHandler(self._handler)
        make = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_masking_factory(make))
        try:
            while True:
                await asyncio.sleep(self._interval)
                await self.flush()
        finally:
            logging.setLogRecordFactory(make)
            root.removeHandler(self._handler)
