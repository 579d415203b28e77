"""The worker: ``Worker(store, WorkerSettings(...)).run()``. Split by job: ``loop`` (claiming,
lifecycle), ``execution`` (one attempt), ``leases`` (renewal), ``reports`` (batched finish)."""

from jobbers.worker.loop import Worker
from jobbers.worker.settings import WorkerSettings, new_worker_id

__all__ = ["Worker", "WorkerSettings", "new_worker_id"]
