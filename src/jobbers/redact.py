"""One rule for secrets in kwargs and results: the API, dashboard and logs show them as ``***``."""

from __future__ import annotations

from typing import Any

SECRET_KEYS = frozenset({"token", "password", "secret", "authorization", "jwt"})
MASK = "***"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and k.lower() in SECRET_KEYS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
