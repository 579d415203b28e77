"""Jobbers: a distributed, asyncio-native task execution system.

The public surface is re-exported here; everything else is an implementation detail.
"""

from typing import TYPE_CHECKING, Any

from jobbers.client import APIError, AsyncClient, Client, ClientError, ManagerUnavailable
from jobbers.handle import AsyncTaskHandle, TaskFailed, TaskHandle
from jobbers.models import Status
from jobbers.registry import TaskContext, register_task, task

if TYPE_CHECKING:
    from jobbers.producer import AsyncProducer, Producer

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncProducer",
    "AsyncTaskHandle",
    "Client",
    "ClientError",
    "ManagerUnavailable",
    "Producer",
    "Status",
    "TaskContext",
    "TaskFailed",
    "TaskHandle",
    "register_task",
    "task",
]


def __getattr__(name: str) -> Any:
    """The producers load the validation stack (pydantic models of the API) only when used."""
    if name in ("Producer", "AsyncProducer"):
        from jobbers import producer

        return getattr(producer, name)
    raise AttributeError(f"module 'jobbers' has no attribute {name!r}")
