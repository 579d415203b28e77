"""One rule for secrets in kwargs and results: the API, dashboard and logs show them as ``***``.

A key is secret when its name, in snake case (``apiKey`` and ``API-Key`` read as ``api_key``), is
one of :data:`SECRET_KEYS` or ends with one of :data:`SECRET_SUFFIXES`, at any depth, in any case.
Names are matched whole or by suffix after an underscore, so ``max_tokens`` or ``tokenizer`` stay
visible while ``github_token`` and ``db_password`` are masked.

Besides the built-in keys, a task may declare kwarg names of its own; this process learns them
from its registry and from the definitions workers registered in the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "secret",
        "authorization",
        "jwt",
        "api_key",
        "apikey",
        "private_key",
        "secret_key",
        "access_key",
        "credentials",
        "credential",
    }
)
SECRET_SUFFIXES = (
    "_token",
    "_password",
    "_passwd",
    "_secret",
    "_api_key",
    "_private_key",
    "_secret_key",
    "_access_key",
    "_credentials",
)
MASK = "***"

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def is_secret(key: str) -> bool:
    """Cached: the same few kwarg names come back in every task shown."""
    name = _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


_TASK_SECRETS: dict[str, frozenset[str]] = {}


def declare_secrets(task_name: str, names: Iterable[str]) -> None:
    """Mask these kwarg names (any case, any depth) wherever ``task_name``'s data is shown."""
    lowered = frozenset(n.lower() for n in names)
    if lowered:
        _TASK_SECRETS[task_name] = lowered
    else:
        _TASK_SECRETS.pop(task_name, None)


def secret_keys(task_name: str) -> frozenset[str]:
    declared = _TASK_SECRETS.get(task_name)
    return SECRET_KEYS if declared is None else SECRET_KEYS | declared


def redact(value: Any, keys: frozenset[str] = frozenset()) -> Any:
    """``keys``: kwarg names a task declared secret, masked besides the built-in rule."""
    if isinstance(value, dict):
        if _nothing_to_mask(value, keys):
            return value  # shared, not copied: answers are encoded, never changed in place
        return {
            k: MASK if isinstance(k, str) and _masked(k, keys) else redact(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value


def _nothing_to_mask(value: dict[Any, Any], keys: frozenset[str]) -> bool:
    for k, v in value.items():
        if isinstance(v, dict | list) or not isinstance(k, str):
            return False
        if _masked(k, keys):
            return False
    return True


def _masked(key: str, keys: frozenset[str]) -> bool:
    return is_secret(key) or key.lower() in keys
