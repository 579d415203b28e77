"""One rule for secrets in kwargs and results: the API, dashboard and logs show them as ``***``.

A key is secret when its name, in snake case (``apiKey`` and ``API-Key`` read as ``api_key``), is
one of :data:`SECRET_KEYS` or ends with one of :data:`SECRET_SUFFIXES`, at any depth, in any case.
Names are matched whole or by suffix after an underscore, so ``max_tokens`` or ``tokenizer`` stay
visible while ``github_token`` and ``db_password`` are masked.
"""

from __future__ import annotations

import re
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


def is_secret(key: str) -> bool:
    name = _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and is_secret(k) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
