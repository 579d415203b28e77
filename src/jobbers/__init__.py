"""Jobbers: a distributed, asyncio-native task execution system.

The public surface is re-exported here; everything else is an implementation detail. The clients,
handles and producers are imported on first use: a process that only runs tasks (a worker, a
task's child process) does not pay for the HTTP stack or the API's validation models.
"""

from typing import TYPE_CHECKING, Any

from jobbers import submitting as _submitting  # noqa: F401  (gives @task its submit())
from jobbers.current import CurrentTask, current_task
from jobbers.errors import (
    APIError,
    ClientError,
    JobbersError,
    ManagerUnavailable,
    TaskFailed,
    UnknownTask,
)
from jobbers.injection import Depends
from jobbers.models import Status
from jobbers.registry import TaskContext, on_worker_start, register_task, task

if TYPE_CHECKING:
    from jobbers.client import AsyncClient, Client
    from jobbers.handle import AsyncTaskHandle, TaskHandle
    from jobbers.producer import AsyncProducer, Producer

_LAZY = {
    "AsyncClient": "client",
    "Client": "client",
    "AsyncTaskHandle": "handle",
    "TaskHandle": "handle",
    "AsyncProducer": "producer",
    "Producer": "producer",
}

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncProducer",
    "AsyncTaskHandle",
    "Client",
    "ClientError",
    "CurrentTask",
    "Depends",
    "JobbersError",
    "ManagerUnavailable",
    "Producer",
    "Status",
    "TaskContext",
    "TaskFailed",
    "TaskHandle",
    "UnknownTask",
    "current_task",
    "on_worker_start",
    "register_task",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobbers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"jobbers.{module}"), name)
