"""The store a scenario runs against, on its own host: a backend is a parameter of every
scenario. Each kind starts its server in the store host's namespace (its own data directory,
stopped by pid) and can be killed, restarted, paused and resumed as the faults need."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Protocol

from .netns import Network, address


class StoreHost(Protocol):
    kind: str

    def url(self, prefix: str, timeout: float) -> str: ...
    def start(self) -> None: ...
    def kill(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...


class RedisHost:
    """``redis-server`` on ``host``; ``fsync`` is None (no persistence) or an ``appendfsync``."""

    kind = "redis"

    def __init__(
        self,
        net: Network,
        workdir: Path,
        *,
        host: str = "store",
        port: int = 6379,
        fsync: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.net = net
        self.workdir = workdir
        self.host = host
        self.port = port
        self.fsync = fsync
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return address(self.host)

    def url(self, prefix: str, timeout: float) -> str:
        return f"redis://{self.address}:{self.port}/0?prefix={prefix}&timeout={timeout:g}"

    def args(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", self.fsync]
            if self.fsync
            else ["--appendonly", "no"]
        )
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            self.address,
            "--protected-mode",
            "no",
            "--save",
            "",
            *persistence,
            "--dir",
            str(self.workdir),
            *self.extra,
        ]

    def start(self, timeout: float = 20.0) -> None:
        self.proc = self.net.spawn(self.host, self.args(), log=self.workdir / "redis.log")
        wait_for_redis(self.address, self.port, timeout, self.proc, self.workdir / "redis.log")

    def kill(self) -> None:
        """kill -9: what was not on disk is gone."""
        if self.proc is not None:
            self.resume()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def wipe(self) -> None:
        """Forget everything on disk (a restart then comes back empty)."""
        for name in os.listdir(self.workdir):
            if name.startswith(("appendonly", "dump")):
                path = self.workdir / name
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                    path.rmdir()
                else:
                    path.unlink()


def wait_for_redis(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Until ``PING`` answers ``PONG`` (and not ``LOADING``): an AOF replays first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {log.read_text() if log else ''}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"redis-server at {host}:{port} not up within {timeout} s")
