"""Jobbers: a distributed, asyncio-native task execution system.

The public surface is re-exported here; everything else is an implementation detail. The clients
are imported on first use: a process that only runs tasks (a worker, a task's child process) does
not pay for the HTTP stack.
"""

from typing import TYPE_CHECKING, Any

from jobbers.models import Status
from jobbers.registry import TaskContext, register_task, task

if TYPE_CHECKING:
    from jobbers.client import APIError, AsyncClient, Client, ClientError, ManagerUnavailable

_CLIENT_NAMES = frozenset(
    {"APIError", "AsyncClient", "Client", "ClientError", "ManagerUnavailable"}
)

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "ClientError",
    "ManagerUnavailable",
    "Status",
    "TaskContext",
    "register_task",
    "task",
]


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from jobbers import client

        return getattr(client, name)
    raise AttributeError(f"module 'jobbers' has no attribute {name!r}")
