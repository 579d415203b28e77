"""The worker's side of the fork server (``airflow_jobbers.zygote``): start it once, then run
each workload in a fork of it. Imports no Airflow (the worker's event loop stays light)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from airflow_jobbers.zygote import EXIT_PREFIX

_START_TIMEOUT = 120.0
_OUTPUT_LINES = 40
_LINE_LIMIT = 1 << 20


class ForkServerUnavailable(Exception):
    """The fork server could not be started or went away before the workload began."""


class ForkServer:
    """One fork server per worker process, started on first use and restarted if it died."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: str | None = None

    @property
    def socket_path(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "zygote.sock")

    async def ensure(self) -> str:
        async with self._lock:
            if self._proc is not None and self._proc.returncode is None:
                return self.socket_path
            await self._start()
            return self.socket_path

    async def _start(self) -> None:
        from airflow_jobbers.runner import _die_with_parent

        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = tempfile.mkdtemp(prefix="airflow-jobbers-")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "airflow_jobbers.zygote",
            self.socket_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        assert self._proc.stdout is not None
        try:
            ready = await asyncio.wait_for(self._proc.stdout.readline(), _START_TIMEOUT)
        except TimeoutError:
            ready = b""
        if ready.strip() != b"ready":
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            raise ForkServerUnavailable(f"fork server did not start (exit {self._proc.returncode})")


_SERVER = ForkServer()


async def run_forked(data: bytes, grace: float) -> tuple[int, list[str]]:
    """Run one workload in a fork of the fork server; like ``runner.run_child``.

    Raises ForkServerUnavailable only before the workload process exists (so the caller may
    fall back to a plain child without any risk of running it twice).
    """
    try:
        path = await _SERVER.ensure()
        reader, writer = await asyncio.open_unix_connection(path, limit=_LINE_LIMIT)
    except (OSError, ForkServerUnavailable) as exc:
        raise ForkServerUnavailable(str(exc)) from exc
    output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
    state: dict[str, Any] = {"pid": None, "code": None}
    try:
        writer.write(len(data).to_bytes(8, "big") + data)
        await writer.drain()
        await _read(reader, output, state)
    except BaseException:
        await _stop(reader, output, state, grace)
        raise
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if state["pid"] is None:
        raise ForkServerUnavailable("the fork server closed the connection before forking")
    if state["code"] is None:
        return -int(signal.SIGKILL), list(output)  # the fork server died with the workload
    return int(state["code"]), list(output)


async def _read(
    reader: asyncio.StreamReader, output: collections.deque[str], state: dict[str, Any]
) -> None:
    while True:
        try:
            raw = await reader.readline()
        except ValueError:  # a line longer than the limit: keep its start
            raw = await reader.read(_LINE_LIMIT)
        if not raw:
            return
        if raw.startswith(EXIT_PREFIX):
            state["code"] = int(raw[len(EXIT_PREFIX) :].strip() or -1)
            return
        line = raw.decode(errors="replace").rstrip()
        if state["pid"] is None and line.startswith("PID "):
            state["pid"] = int(line[4:])
            continue
        output.append(line[:2000])


async def _stop(
    reader: asyncio.StreamReader,
    output: collections.deque[str],
    state: dict[str, Any],
    grace: float,
) -> None:
    """SIGTERM the workload's process group, SIGKILL after ``grace``; wait for its end."""
    pid = state["pid"]
    if pid is None or state["code"] is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, OSError):
            await asyncio.wait_for(_read(reader, output, state), wait)
        if state["code"] is not None:
            return
