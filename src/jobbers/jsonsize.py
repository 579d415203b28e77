"""How large a value is as compact JSON, without building all of a large one's encoding."""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def encoded_size(value: Any, limit: int) -> int | None:
    """Bytes of ``value`` as compact ASCII JSON, or None as soon as they pass ``limit``.

    Raises TypeError or ValueError for a value that is not JSON (an object, NaN).
    """
    if isinstance(value, str) and len(value) + 2 > limit:
        return None  # its encoding is at least this long: no need to build it
    size = 0
    for chunk in _ENCODER.iterencode(value):
        size += len(chunk)  # ASCII-only output: one byte per character
        if size > limit:
            return None
    return size
