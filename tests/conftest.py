"""Shared by every test package: async tests run on asyncio through anyio's pytest plugin, and
every test that takes ``store_url`` or ``store`` runs once per store backend.

The Redis backend runs on a private ``redis-server`` (spare loopback port, no persistence)
started once per session and stopped by pid; each test gets its own key prefix, so tests never
see each other's keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from jobbers.store import open_store
from jobbers.store.base import Store

BACKENDS = ["sqlite", "redis", "postgres"]
StoreFactory = Callable[[], Store]


FAULTS = Path(__file__).parent / "faults"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fault suite (root, network namespaces, minutes of load) runs when it is named
    (``pytest tests/faults``, as scripts/test does), not as part of ``pytest tests``."""
    if collection_path != FAULTS:
        return None
    here = config.invocation_params.dir
    named = [(here / str(arg).split("::", 1)[0]).resolve() for arg in config.args]
    return not any(path == FAULTS or FAULTS in path.parents for path in named)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` this test session owns: started on a spare port, stopped by pid."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = spare_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.workdir),
        ]
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "redis.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"redis-server on {self.port} not up within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: The local PostgreSQL server the suites use (trust auth, user postgres).
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def postgres_admin(sql: str) -> None:
    """One statement on the server's ``postgres`` database, through psql (no event loop)."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not installed (apt-get install postgresql-client)")
    subprocess.run(
        [psql, f"{POSTGRES}/postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test session, dropped at its end; each test then gets a
    schema of its own in it (``?schema=``)."""
    name = f"jobbers_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        postgres_admin(f"CREATE DATABASE {name}")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not usable: {exc.stderr.decode()[:300]}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One URL per backend; a Redis URL gets a key prefix of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgres":
        database: str = request.getfixturevalue("postgres_database")
        return f"{database}?schema=t{uuid.uuid4().hex[:12]}"
    server: RedisServer = request.getfixturevalue("redis_server")
    return f"{server.url}?prefix=t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def make_store(store_url: str) -> AsyncIterator[StoreFactory]:
    """Each call opens another connection to the same backend, as another process would."""
    opened: list[Store] = []

    def factory() -> Store:
        opened.append(open_store(store_url))
        return opened[-1]

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()
