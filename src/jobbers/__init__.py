"""Jobbers: a distributed, asyncio-native task execution system.

The public surface is re-exported here; everything else is an implementation detail.
"""

from jobbers.client import APIError, AsyncClient, Client, ClientError, ManagerUnavailable
from jobbers.models import Status
from jobbers.registry import TaskContext, register_task, task

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
