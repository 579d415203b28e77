"""Reading the Manager's change feed from a cursor: one call per ``read`` in the steady state,
whatever the number of jobs in flight, and at most ``max_pages`` calls while catching up.

Reads closer together than ``min_interval`` are skipped while the feed is caught up. Each batch
of finished tasks costs the scheduler a full scheduling pass over the DAG run, and a loop that
received events does not sleep: reading every heartbeat hands it tasks one or two at a time and
keeps it spinning, while a short pause hands it the same tasks in fewer, larger batches.

Imports no Airflow; the client is anything with ``events`` and ``latest_cursor`` (the Jobbers
``Client``), so it is unit-tested against a Manager without Airflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class FeedClient(Protocol):
    def events(
        self, after: str | None = None, limit: int = 1000, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def latest_cursor(self) -> str: ...


class FeedReader:
    """Remembers the cursor and hands each new event to ``apply``; never raises on a failed
    call (``warn`` is told, and the next read resumes from the same cursor)."""

    def __init__(
        self,
        batch_size: int,
        max_pages: int,
        warn: Callable[[str, str], None],
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.batch_size = max(1, min(10_000, batch_size))
        self.max_pages = max(1, max_pages)
        self.min_interval = max(0.0, min_interval)
        self.cursor: str | None = None
        self._warn = warn
        self._clock = clock
        self._next_read = float("-inf")

    def start_at_tail(self, client: FeedClient) -> None:
        """Skip the past: only events after this call are read (raises if the call fails,
        and the feed is then read from its beginning: slower, still exact)."""
        self.cursor = str(client.latest_cursor())

    def read(
        self,
        client: FeedClient,
        apply: Callable[[dict[str, Any]], None],
        force: bool = False,
        wait: float = 0.0,
    ) -> int:
        """Apply every event after the cursor (up to ``max_pages`` pages); return how many.

        Within ``min_interval`` of a read that caught up, nothing is read (unless ``force``).
        With ``wait``, the first call is a long poll: when nothing is new, the Manager answers
        with the first new event, or with none after ``wait`` seconds.
        """
        now = self._clock()
        if not force and now < self._next_read:
            return 0
        self._next_read = now + self.min_interval
        applied = 0
        for _ in range(self.max_pages):
            try:
                events, cursor = client.events(after=self.cursor, limit=self.batch_size, wait=wait)
            except Exception as exc:
                self._warn(
                    "events",
                    f"cannot read the Jobbers change feed ({type(exc).__name__}); "
                    f"resuming from cursor {self.cursor} later",
                )
                return applied
            for event in events:
                apply(event)
            applied += len(events)
            if cursor is not None:
                self.cursor = str(cursor)
            if len(events) < self.batch_size:
                break
            wait = 0.0
        else:
            self._next_read = now  # a backlog: go on catching up next heartbeat
        return applied

    def read_until(
        self,
        client: FeedClient,
        apply: Callable[[dict[str, Any]], None],
        done: Callable[[], bool],
        seconds: float,
    ) -> int:
        """Read as events come (long polls) until ``done()`` holds or ``seconds`` pass with
        nothing new; return how many events were applied. Returns at once when ``done()``
        holds already, or when the Manager does not answer."""
        deadline = self._clock() + seconds
        applied = 0
        while not done():
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            read = self.read(client, apply, force=True, wait=remaining)
            if read == 0:
                break
            applied += read
        return applied
