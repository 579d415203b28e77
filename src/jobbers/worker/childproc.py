"""Child processes that cannot outlive their parent or ignore a stop: the few helpers every
process-running part of Jobbers shares (process-isolated tasks, the Airflow runner).

Standard library only, so any package can import it without pulling in the rest of Jobbers.

- :func:`die_with_parent`: ask Linux to SIGKILL this process when its parent dies, so that a
  killed worker leaves no orphan running a task that is about to run again elsewhere. Call it
  first thing in the child (or pass it as ``preexec_fn`` where no thread can hold a lock at fork
  time); with ``parent_pid`` it also exits at once if the parent died before the call.
- :func:`escalate` / :func:`stop`: SIGTERM, wait a grace period, then SIGKILL and wait again:
  a child that ignores or handles SIGTERM slowly is still gone a bounded time later.
- :class:`OutputTail`: the last lines a child printed, bounded in count and width, for the error
  message when it fails, without keeping everything a chatty child writes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Awaitable, Callable

#: ``prctl`` option that delivers a signal to this process when its parent thread exits.
PR_SET_PDEATHSIG = 1
#: Seconds to wait for the end of a process after SIGKILL (it cannot refuse; this bounds a zombie
#: that the kernel is slow to reap, or a process stuck in uninterruptible I/O).
KILL_WAIT = 5.0


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Get ``sig`` when the parent dies (Linux only; elsewhere nothing happens).

    ``parent_pid`` closes the race where the parent died before this call: the process is then
    already orphaned (re-parented), so it exits at once.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def send(pid: int, sig: int, *, group: bool = False) -> None:
    """Signal a process (or its process group); one that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


async def escalate(
    pid: int,
    ended: Callable[[float], Awaitable[bool]],
    grace: float,
    *,
    group: bool = False,
    kill_wait: float = KILL_WAIT,
) -> bool:
    """SIGTERM ``pid``, give it ``grace`` seconds, then SIGKILL and wait ``kill_wait`` more.

    ``ended(timeout)`` waits up to ``timeout`` seconds for the process to end and says whether it
    did; it is whatever fits the caller (``Process.wait``, reading a status pipe to its end).
    Returns whether the process ended. Safe to call while being cancelled: the waits are shielded
    from a second cancellation so that the kill is always sent.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        send(pid, sig, group=group)
        waiting = asyncio.ensure_future(ended(wait))
        try:
            done = await asyncio.shield(waiting)
        except asyncio.CancelledError:
            done = False
        if done:
            return True
    return False


async def stop(
    proc: asyncio.subprocess.Process,
    grace: float,
    *,
    group: bool = False,
    kill_wait: float = KILL_WAIT,
) -> int | None:
    """:func:`escalate` for an asyncio subprocess; returns its exit code (None if it survived)."""
    if proc.returncode is not None:
        return proc.returncode

    async def ended(timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout)
        return proc.returncode is not None

    await escalate(proc.pid, ended, grace, group=group, kill_wait=kill_wait)
    return proc.returncode


class OutputTail:
    """The last ``lines`` lines of a child's output, each cut to ``width`` characters."""

    def __init__(self, lines: int = 20, width: int = 2000) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._width = width

    def add(self, raw: bytes | str) -> None:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        self._lines.append(text.rstrip("\r\n")[: self._width])

    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        return "\n".join(self._lines)

    async def drain(self, stream: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end, keeping the tail; a line longer than the stream's buffer
        limit is dropped (the reader discards it) and noted, rather than failing the read."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                self.add("<a line over the reader's limit was left out>")
                continue
            if not raw:
                return
            self.add(raw)
