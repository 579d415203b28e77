"""Hear other processes' commits as they happen, instead of only by polling.

Every commit to a SQLite store in WAL mode writes to its ``-wal`` file. On Linux, inotify
reports each write to a file descriptor an event loop can watch, so a worker waiting for work, or
a caller waiting for a result, learns of a commit from another process within microseconds,
where a poll of ``PRAGMA data_version`` learns of it within the poll interval (a millisecond at
best: the event loop's timers are no finer). A wake-up only says "look again": the caller still
compares ``data_version``, and keeps polling as before, so a missed or early event (one frame of
a commit written, not yet the rest) costs at most a poll interval, and a platform without
inotify just polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


class FileWatch:
    """Calls ``on_change`` on the event loop's thread whenever ``path`` is written."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]):
        self._fd = fd
        self.loop = loop
        self._on_change = on_change
        loop.add_reader(fd, self._ready)

    @classmethod
    def start(
        cls, path: str, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]
    ) -> FileWatch | None:
        """None where inotify is not available (not Linux, no such file, out of watches)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
            os.close(fd)
            return None
        try:
            return cls(fd, loop, on_change)
        except (NotImplementedError, RuntimeError):  # a loop that cannot watch descriptors
            os.close(fd)
            return None

    def _ready(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._fd, 4096):
                pass
        self._on_change()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._fd)
        os.close(self._fd)
