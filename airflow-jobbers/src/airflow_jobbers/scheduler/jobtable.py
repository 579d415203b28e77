"""The jobs the executor is responsible for, by Airflow key and by Jobbers id.

Pure: neither Airflow nor Jobbers is imported, so it is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    """One Jobbers task standing for one Airflow workload."""

    id: str
    key: Any  # an Airflow TaskInstanceKey or CallbackKey
    is_task: bool
    starts: int = 0
    worker: str | None = None
    #: A ``completed`` must be checked for a duplicate-delivery result (the job started more
    #: than once, or was adopted).
    check_result: bool = False
    #: Adopted without a successful status lookup: verified by the next reconciliation.
    unverified: bool = False

    def started(self, worker: str | None) -> None:
        """A ``started`` event: a second start means the first attempt may still be running."""
        self.starts += 1
        if worker:
            self.worker = worker
        if self.starts > 1:
            self.check_result = True


class JobTable:
    """Jobs by key and by id. A key tracks one job at a time: a deferred task instance comes
    back under the same key with a new job, which supersedes the old one."""

    def __init__(self) -> None:
        self._by_key: dict[Any, Job] = {}
        self._by_id: dict[str, Job] = {}
        #: Ids of completed jobs whose result must be read before they are reported.
        self.pending_results: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._by_key.values()))

    def track(self, job: Job) -> None:
        old = self._by_key.get(job.key)
        if old is not None:
            self._by_id.pop(old.id, None)
            self.pending_results.discard(old.id)
        self._by_key[job.key] = job
        self._by_id[job.id] = job

    def untrack(self, key: Any) -> Job | None:
        job = self._by_key.pop(key, None)
        if job is not None:
            self._by_id.pop(job.id, None)
            self.pending_results.discard(job.id)
        return job

    def by_id(self, job_id: str) -> Job | None:
        return self._by_id.get(job_id)

    def by_key(self, key: Any) -> Job | None:
        return self._by_key.get(key)

    def is_current(self, job: Job) -> bool:
        """Whether ``job`` is still the one tracked under its id (not reported, superseded)."""
        return self._by_id.get(job.id) is job
