"""Task ids: time-ordered UUIDv7 by default, client-chosen ids from a safe alphabet."""

from __future__ import annotations

import os
import re
import time
import uuid

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_ID_RE = re.compile(ID_PATTERN)


def uuid7() -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 64) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_valid_id(task_id: str) -> bool:
    return bool(_ID_RE.match(task_id))
