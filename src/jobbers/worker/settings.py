"""How a worker is configured, and how it names itself."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs besides its store; the CLI is a thin shell over this.

    ``lease`` bounds how long a dead worker's tasks wait before another worker retries them;
    renewals happen every ``min(lease / 3, renew_cap)`` so that cancellations arrive within
    ``renew_cap`` seconds even on a store without push notifications.
    """

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10
    lease: float = 30.0
    shutdown_grace: float = 30.0
    maintenance_interval: float = 1.0
    #: Finished tasks older than this are pruned by maintenance.
    retention: float = 7 * 86400.0
    #: Seconds between prunes; pruning scans more than promote/reap, so it runs less often.
    prune_interval: float = 60.0
    #: Longest idle wait for a store change before claiming again (due retries need a look).
    poll_cap: float = 1.0
    #: Upper bound on the renewal interval: how fast a running task learns it was cancelled.
    renew_cap: float = 0.5
    #: A result larger than this, as JSON, fails its attempt (``ResultTooLarge``, not retried).
    max_result_bytes: int = 1024 * 1024
    #: At start-up, seconds to wait for a store that does not answer (it may be starting too)
    #: before giving up with exit code 1; a bad URL or another schema fails at once.
    store_wait: float = 60.0
    #: Fire due schedules from this worker (any number of workers may: each occurrence fires
    #: once), looking at least this often (seconds).
    fire_schedules: bool = True
    schedule_interval: float = 0.5

    def __post_init__(self) -> None:
        if not self.queues or any(not q for q in self.queues):
            raise ValueError("a worker needs at least one non-empty queue name")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.max_result_bytes < 1:
            raise ValueError(f"max_result_bytes must be at least 1, not {self.max_result_bytes}")
        for name in (
            "lease",
            "maintenance_interval",
            "poll_cap",
            "renew_cap",
            "prune_interval",
            "schedule_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.shutdown_grace < 0 or self.retention < 0 or self.store_wait < 0:
            raise ValueError("shutdown_grace and retention must not be negative")

    @property
    def renew_interval(self) -> float:
        return min(self.lease / 3, self.renew_cap)


def new_worker_id() -> str:
    """``host:pid:random``: readable in the dashboard, unique across restarts of one pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
