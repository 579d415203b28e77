"""The worker's side of the fork server (``airflow_jobbers.worker.zygote``): start it once, then run
each workload in a fork of it. Imports no Airflow (the worker's event loop stays light)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field

from airflow_jobbers import protocol
from airflow_jobbers.worker.childproc import OutputTail, die_with_parent, signal_group, stop_group
from airflow_jobbers.worker.startgate import StartWatch

_START_TIMEOUT = 120.0
_LINE_LIMIT = 1 << 20


class ForkServerUnavailable(Exception):
    """The fork server could not be started or went away before the workload began."""


#: How the worker starts its fork server (the socket path is appended).
ZYGOTE_ARGV = (sys.executable, "-m", "airflow_jobbers.worker.zygote")


class ForkServerHandle:
    """The worker's one fork server process, started on first use and restarted if it died."""

    def __init__(self, argv: tuple[str, ...] = ZYGOTE_ARGV) -> None:
        self.argv = argv
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: str | None = None

    @property
    def socket_path(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "zygote.sock")

    async def aclose(self) -> None:
        """SIGKILL the fork server (the processes it forked die with it) and wait for it."""
        if self._proc is not None:
            if self._proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
            await self._proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    async def ensure(self) -> str:
        async with self._lock:
            if self._proc is not None and self._proc.returncode is None:
                return self.socket_path
            await self._start()
            return self.socket_path

    async def _start(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = tempfile.mkdtemp(prefix="airflow-jobbers-")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            self.socket_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        assert self._proc.stdout is not None
        try:
            ready = await asyncio.wait_for(self._proc.stdout.readline(), _START_TIMEOUT)
        except TimeoutError:
            ready = b""
        if ready.strip() != protocol.FORK_READY:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            raise ForkServerUnavailable(f"fork server did not start (exit {self._proc.returncode})")


_SERVER = ForkServerHandle()


async def start_server(server: ForkServerHandle = _SERVER) -> None:
    """Start the fork server now rather than on the first workload (raises
    ForkServerUnavailable when it does not start; the first workload then tries again)."""
    await server.ensure()


@dataclass
class _Forked:
    """What one connection has told so far: the workload process's pid, exit code, output."""

    pid: int | None = None
    code: int | None = None
    output: OutputTail = field(default_factory=OutputTail)


async def run_forked(
    data: bytes,
    grace: float,
    server: ForkServerHandle = _SERVER,
    watch: StartWatch | None = None,
) -> tuple[int, list[str]]:
    """Run one workload in a fork of the fork server; like ``runner.run_child`` (``watch`` is
    told each output line, to notice the task instance's start).

    Raises ForkServerUnavailable only before the workload process exists (so the caller may
    fall back to a plain child without any risk of running it twice).
    """
    try:
        path = await server.ensure()
        reader, writer = await asyncio.open_unix_connection(path, limit=_LINE_LIMIT)
    except (OSError, ForkServerUnavailable) as exc:
        raise ForkServerUnavailable(str(exc)) from exc
    forked = _Forked()
    try:
        writer.write(len(data).to_bytes(protocol.FORK_LENGTH_BYTES, "big") + data)
        await writer.drain()
        await _read(reader, forked, watch)
    except BaseException:
        pid = forked.pid
        if pid is not None:
            await stop_group(
                lambda sig: signal_group(pid, sig),
                lambda: _read(reader, forked, watch),
                lambda: forked.code is not None,
                grace,
            )
        raise
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if forked.pid is None:
        raise ForkServerUnavailable("the fork server closed the connection before forking")
    if forked.code is None:
        return -int(signal.SIGKILL), forked.output.lines()  # the fork server died with it
    return forked.code, forked.output.lines()


async def _read(
    reader: asyncio.StreamReader, forked: _Forked, watch: StartWatch | None = None
) -> None:
    while True:
        try:
            raw = await reader.readline()
        except ValueError:  # a line longer than the limit: keep its start
            raw = await reader.read(_LINE_LIMIT)
        if not raw:
            return
        if raw.startswith(protocol.FORK_EXIT_PREFIX):
            forked.code = int(raw[len(protocol.FORK_EXIT_PREFIX) :].strip() or -1)
            return
        if forked.pid is None and raw.startswith(protocol.FORK_PID_PREFIX.encode()):
            forked.pid = int(raw[len(protocol.FORK_PID_PREFIX) :])
            continue
        if watch is not None and watch.seen(raw):
            continue
        forked.output.add(raw)
