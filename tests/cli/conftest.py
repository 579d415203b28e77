"""A real ``jobbers dev`` process on a spare port, started the way a user starts it and stopped by
pid with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..conftest import BACKENDS, RedisServer


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def jobbers_command() -> list[str]:
    """The installed console script, as the README runs it; the module if it is not installed."""
    script = Path(sys.executable).parent / "jobbers"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobbers"]


@dataclass
class DevServer:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    startup: float
    #: The ``--store`` it was given ("" for the default ./jobbers.db).
    store: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise


def start(workdir: Path, *args: str, env: dict[str, str] | None = None) -> DevServer:
    """Start a ``jobbers`` command with its output in a log file beside it."""
    log = workdir / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*jobbers_command(), *args],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    return DevServer(proc, "", log, 0.0)


def start_dev(
    workdir: Path,
    *args: str,
    command: str = "dev",
    deadline: float = 10.0,
    env: dict[str, str] | None = None,
) -> DevServer:
    """Start ``jobbers dev`` (or ``manager``) and wait, with a deadline, until /healthz answers."""
    port = spare_port()
    started = time.monotonic()
    server = start(workdir, command, "--port", str(port), *args, env=env)
    server.url = f"http://127.0.0.1:{port}"
    proc = server.proc
    while time.monotonic() - started < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"jobbers {command} exited with {proc.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.url}/healthz", timeout=0.5).status_code == 200:
                server.startup = time.monotonic() - started
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"jobbers {command} not up within {deadline}s:\n{server.output()}")


@pytest.fixture(scope="module", params=BACKENDS)
def dev(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    """One dev process for a module's tests per store backend, in a fresh directory (SQLite:
    the default store file there; Redis: the session's redis-server under a fresh prefix;
    PostgreSQL: the session's database under a fresh schema)."""
    args = ["--grace", "1"]
    store = ""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store = f"{server.url}?prefix=dev{uuid.uuid4().hex[:8]}"
        args += ["--store", store]
    elif request.param == "postgres":
        database: str = request.getfixturevalue("postgres_database")
        store = f"{database}?schema=dev{uuid.uuid4().hex[:8]}"
        args += ["--store", store]
    server_ = start_dev(tmp_path_factory.mktemp("dev"), *args)
    server_.store = store
    try:
        yield server_
    finally:
        code = server_.stop()
        assert code == 0, server_.output()
