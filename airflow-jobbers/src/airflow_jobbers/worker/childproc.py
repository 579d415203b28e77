"""Child processes of a worker: dying with the parent, stopping a process group, keeping the
tail of its output. The one place the runner, the fork server and the CLI take these from.

Pure standard library: the worker's event loop, the fork server and the CLI all import it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable

_PR_SET_PDEATHSIG = 1
#: Lines of a workload's output kept for the failure message (the rest is in its log).
TAIL_LINES = 40
#: Longest kept line, in characters.
LINE_LIMIT = 2000
#: Seconds to wait for a process group after SIGKILL.
KILL_WAIT = 5.0


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies, so that a worker killed with SIGKILL
    leaves no orphan workload, supervisor or task process behind to confuse a retry.

    Called in a child before exec (``preexec_fn``), at a fork server's start, and after each
    fork; a no-op elsewhere.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid``; a group that is gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop_group(
    send: Callable[[signal.Signals], None],
    ended: Callable[[], Awaitable[object]],
    is_ended: Callable[[], bool],
    grace: float,
) -> None:
    """Stop a process group: ``send(SIGTERM)``, then ``send(SIGKILL)`` if it has not ended
    after ``grace`` seconds.

    ``send`` delivers a signal to the group (``signal_group``, or a request to the fork
    server that owns it); ``ended()`` returns an awaitable that completes when the process has
    ended (a process's ``wait()``, or reading a fork-server connection to its end);
    ``is_ended()`` says whether it has. Returns once it ended, or ``KILL_WAIT`` s after the
    SIGKILL.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
        if is_ended():
            return
        send(sig)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, OSError):
            await asyncio.wait_for(ended(), wait)


class OutputTail:
    """The last ``TAIL_LINES`` lines of a process's output, each cut to ``LINE_LIMIT``."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)

    def add(self, raw: bytes | str) -> None:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        self._lines.append(text.rstrip()[:LINE_LIMIT])

    def lines(self) -> list[str]:
        return list(self._lines)
