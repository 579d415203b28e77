"""One rule for secrets in kwargs and results: the API, dashboard and logs show them as ``***``.

Besides the built-in keys, a task may declare kwarg names of its own; this process learns them
from its registry and from the definitions workers registered in the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SECRET_KEYS = frozenset({"token", "password", "secret", "authorization", "jwt"})
MASK = "***"

_TASK_SECRETS: dict[str, frozenset[str]] = {}


def declare_secrets(task_name: str, names: Iterable[str]) -> None:
    """Mask these kwarg names (any case, any depth) wherever ``task_name``'s data is shown."""
    lowered = frozenset(n.lower() for n in names)
    if lowered:
        _TASK_SECRETS[task_name] = lowered
    else:
        _TASK_SECRETS.pop(task_name, None)


def secret_keys(task_name: str) -> frozenset[str]:
    return SECRET_KEYS | _TASK_SECRETS.get(task_name, frozenset())


def redact(value: Any, keys: frozenset[str] = SECRET_KEYS) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and k.lower() in keys else redact(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value
