"""A worker that cannot renew stops its own attempts when their leases run out.

Once a lease has gone a whole lease period without a renewal the store answered, any worker's
maintenance may reap the task and another worker may run it. A worker cut off from its store
(a partition, a paused VM) would otherwise run every attempt it holds to the end and then find
its results refused: each body would run twice in full. Stopping the attempt when its lease ends
keeps the overlap within one lease, and nothing is reported for it.

The check is a timer on the event loop, not a task: after the process was paused (SIGSTOP, a VM
pause) every overdue timer fires in one batch before any task runs a step, so an expired
attempt is cancelled before its body goes on, whichever deadline came first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

#: A task id -> (attempt, monotonic time its lease ends, as this worker last learned it).
Deadlines = Mapping[str, tuple[int, float]]


class ExpiryWatch:
    """Calls ``on_expired`` with the attempts whose lease ended, as soon as it ends."""

    def __init__(
        self, deadlines: Callable[[], Deadlines], on_expired: Callable[[dict[str, int]], None]
    ) -> None:
        self._deadlines = deadlines
        self._on_expired = on_expired
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def kick(self) -> None:
        """A deadline moved or a task started: set the timer for the earliest one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed:
            return
        ends = [end for _, end in self._deadlines().values()]
        if ends:
            delay = max(0.0, min(ends) - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def close(self) -> None:
        self._closed = True
        self.kick()

    def _fire(self) -> None:
        self._timer = None
        now = time.monotonic()
        expired = {t: n for t, (n, end) in self._deadlines().items() if end <= now}
        if expired:
            self._on_expired(expired)
        self.kick()
