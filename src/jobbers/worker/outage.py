"""One log line per store outage, however many loops keep failing through it.

A worker's claim loop, lease renewal, reporting and maintenance all retry a store that stops
answering. Logging each failed try would bury the log under identical lines (a claim loop tries
several times a second), so the first failure of an outage is logged, the rest are counted, and
one line says when the store answers again. A store that holds another schema will not recover by
waiting: :meth:`StoreOutage.failed` re-raises it so that the worker stops.
"""

from __future__ import annotations

import logging
import time

from jobbers.store.base import StoreIncompatible, StoreUnavailable

log = logging.getLogger("jobbers.worker")


class StoreOutage:
    def __init__(self, worker_id: str) -> None:
        self._worker_id = worker_id
        self._since: float | None = None
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failed store calls in the outage so far (0 when there is none)."""
        return self._failures

    def failed(self, what: str, exc: Exception) -> None:
        """Record a failed store call; raises ``exc`` again if waiting cannot fix it."""
        if isinstance(exc, StoreIncompatible):
            raise exc
        self._failures += 1
        if self._since is not None:
            return
        self._since = time.monotonic()
        if isinstance(exc, StoreUnavailable):
            log.error(
                "worker %s: store unavailable (%s): %s; retrying until it answers",
                self._worker_id,
                what,
                exc,
            )
        else:
            log.error(
                "worker %s: %s failed; retrying until the store answers",
                self._worker_id,
                what,
                exc_info=exc,
            )

    def answered(self) -> None:
        """A store call succeeded: close the outage, if there was one, with one line."""
        if self._since is None:
            return
        log.warning(
            "worker %s: store answers again after %.1f s (%d failed call(s))",
            self._worker_id,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since = None
        self._failures = 0
