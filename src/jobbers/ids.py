"""Task ids: time-ordered UUIDv7 by default, client-chosen ids from a safe alphabet."""

from __future__ import annotations

import os
import re
import threading
import time

#: Letters, digits and ``_.:-``, but not ``.`` or ``..``: a URL cannot address those (clients and
#: proxies resolve them as "this" and "the parent" path segment), so no route could reach the task.
ID_PATTERN = r"^(?:[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*|\.{3,})$"
MAX_ID_LENGTH = 128
_ID_RE = re.compile(ID_PATTERN)
#: Path segments that a URL resolves away; never an id, a queue name or any other path part.
DOT_SEGMENTS = frozenset({".", ".."})


class _RandomBytes:
    """Operating-system randomness drawn 4 KiB at a time, so a bulk submit makes no system call
    per id. The lock keeps two threads from ever taking the same bytes, and a
    forked child drops what it inherited (checked at fork, not per id: ``os.getpid()`` is a
    system call too)."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._at = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: never replay the parent's bytes. The lock is new too, since the
        parent's may have been held by a thread that does not exist here."""
        self._buffer, self._at, self._lock = b"", 0, threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(self._chunk), 0
            start, self._at = self._at, self._at + n
            return self._buffer[start : self._at]


_random = _RandomBytes()


def uuid7() -> str:
    """Formatted by hand: building a :class:`uuid.UUID` per id costs more than the formatting."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(_random.take(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 64) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_valid_id(task_id: str) -> bool:
    return len(task_id) <= MAX_ID_LENGTH and bool(_ID_RE.match(task_id))


def id_problem(task_id: str) -> str | None:
    """Why ``task_id`` cannot be a task id, in words a user can act on; None when it can."""
    if is_valid_id(task_id):
        return None
    if task_id in DOT_SEGMENTS:
        return f"{task_id!r} cannot be a task id: a URL resolves it away, so no route reaches it"
    return (
        f"{task_id!r} is not a valid task id: use 1 to {MAX_ID_LENGTH} letters, digits"
        " or _.:- characters"
    )
