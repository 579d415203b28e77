"""How many of a worker's workloads may be starting their task instance at once
(``[jobbers] max_starting``).

Starting a task instance is the supervisor's ``ti_run`` call to the Airflow API server. A worker
that gets a batch of jobs would otherwise fork them all within a few hundred milliseconds, and the
scheduler hands out task instances in batches. Such a burst can stall the API server until its
database pool's 30 s timeout: its sync endpoints run in more threads than it has database
connections, and once requests waiting for a connection hold every thread, the requests holding
connections cannot finish; a task process whose Execution API calls (5 s timeout, 5 tries) all fall
into that stall fails its task instance. Admitting a few starts at a time, each slot freed when the
API server has answered, keeps the burst out of the API server, and the start rate follows how fast
it answers.

The workload process says when its task instance has started: ``install_marker`` (there,
before the supervisor runs) makes the Execution API client's ``start`` write ``STARTED_LINE``
to stdout once it returns or raises. The worker side (``StartGate``) imports no Airflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow_jobbers.worker.patching import Method, wrap_method

#: The workload process's line on stdout once its task instance's start has been answered.
STARTED_LINE = b"\0JOBBERS-TI-STARTED"
#: A slot is freed after this many seconds even without the line (a safety net).
SLOT_TIMEOUT = 30.0
_MARK = "_jobbers_start_marker"


class StartGate:
    """At most ``limit`` workloads between their start and their task instance's start."""

    def __init__(self, limit: int, timeout: float = SLOT_TIMEOUT) -> None:
        self.limit = limit
        self.timeout = timeout
        self.starting = 0
        self._sem = asyncio.Semaphore(limit) if limit > 0 else None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Callable[[], None]]:
        """Wait for a slot; yield the function that frees it (idempotent; called at the
        latest when the block ends, or after ``timeout`` seconds)."""
        sem = self._sem
        if sem is not None:
            await sem.acquire()
        self.starting += 1
        freed = False
        timer: asyncio.TimerHandle | None = None

        def free() -> None:
            nonlocal freed
            if freed:
                return
            freed = True
            self.starting -= 1
            if timer is not None:
                timer.cancel()
            if sem is not None:
                sem.release()

        timer = asyncio.get_running_loop().call_later(self.timeout, free)
        try:
            yield free
        finally:
            free()


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StartGate] = (
    weakref.WeakKeyDictionary()
)


def gate(limit: int) -> StartGate:
    """The running event loop's gate (one per worker); ``limit`` 0: a gate that admits all."""
    if limit <= 0:
        return StartGate(0)
    loop = asyncio.get_running_loop()
    found = _gates.get(loop)
    if found is None or found.limit != limit:
        found = _gates[loop] = StartGate(limit)
    return found


class StartWatch:
    """Seconds from a workload's start until its ``STARTED_LINE`` (None until then)."""

    def __init__(self, free: Callable[[], None]) -> None:
        self._free = free
        self._began = time.monotonic()
        self.after: float | None = None

    def seen(self, raw: bytes) -> bool:
        """Whether ``raw`` (one output line) is the marker; frees the slot when it is."""
        if STARTED_LINE not in raw:
            return False
        if self.after is None:
            self.after = time.monotonic() - self._began
        self._free()
        return True


def write_marker() -> None:
    """In the workload process: say on stdout that the task instance's start was answered."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.write(1, STARTED_LINE + b"\n")


def install_marker(write: Callable[[], None] = write_marker) -> bool:
    """Make the Execution API client's ``start`` call ``write`` when it returns or raises
    (once per process); False, and nothing changed, where the client lacks it."""
    try:
        from airflow.sdk.api.client import TaskInstanceOperations
    except ImportError:
        return False

    def wrap(original: Method) -> Method:
        def start(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                write()

        return start

    return wrap_method(TaskInstanceOperations, "start", _MARK, wrap)
