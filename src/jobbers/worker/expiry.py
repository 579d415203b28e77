"""A worker that cannot renew stops its own attempts when their leases run out.

Once a lease has gone a whole lease period without a renewal the store answered, any worker's
maintenance may reap the task and another worker may run it. A worker cut off from its store
(a partition, a paused VM) would otherwise run every attempt it holds to the end and then find
its results refused: each body would run twice in full. Stopping the attempt when its lease ends
keeps the overlap within one lease, and nothing is reported for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

#: A task id -> (attempt, monotonic time its lease ends, as this worker last learned it).
Deadlines = Mapping[str, tuple[int, float]]


class ExpiryWatch:
    """Calls ``on_expired`` with the attempts whose lease ended, as soon as it ends."""

    def __init__(
        self,
        deadlines: Callable[[], Deadlines],
        on_expired: Callable[[dict[str, int]], None],
        idle: float,
    ) -> None:
        self._deadlines = deadlines
        self._on_expired = on_expired
        self._idle = idle
        self._kicked = asyncio.Event()

    def kick(self) -> None:
        """A deadline moved or a task started: plan the next wake-up again."""
        self._kicked.set()

    async def run(self) -> None:
        while True:
            self._kicked.clear()
            now = time.monotonic()
            deadlines = self._deadlines()
            expired = {t: n for t, (n, end) in deadlines.items() if end <= now}
            if expired:
                self._on_expired(expired)
            later = [end for _, end in deadlines.values() if end > now]
            wait = min(later) - now if later else self._idle
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), wait)
