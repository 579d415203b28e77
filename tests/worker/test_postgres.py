"""Worker processes on the PostgreSQL store: a worker killed -9 in the middle of 10,000 tasks,
and a server restart in the middle of a run (on a server this test starts for itself)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobbers.models import Status
from jobbers.store import open_store
from jobbers.store.base import StoreUnavailable

from ..conftest import spare_port
from .conftest import Spawn
from .support import new_task, policy_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BIN = Path("/usr/lib/postgresql/15/bin")


class PgServer:
    """A PostgreSQL server of this test's own, on a spare port, stopped by pid. As root it
    runs as the ``postgres`` user (the server refuses to run as root)."""

    def __init__(self) -> None:
        if not (BIN / "postgres").exists():
            pytest.skip(f"no PostgreSQL server binaries in {BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="jobbers-pg-"))
        self.data = self.dir / "data"
        self.port = spare_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        subprocess.run(
            [str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
            user=self.user,
            timeout=60,
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 20.0) -> None:
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=100",
            ],
            stdout=log,
            stderr=log,
            user=self.user,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "server.log").read_text()[-2000:]
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"PostgreSQL on {self.port} not up within {timeout} s")

    def stop(self) -> None:
        """A fast shutdown (SIGINT): sessions are cut, committed work is on disk."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """These tests run on PostgreSQL only: a server of their own when they restart it, else
    the session's database."""
    if "pg_server" in request.fixturenames:
        server: PgServer = request.getfixturevalue("pg_server")
        return f"{server.url}?schema=restart"
    database: str = request.getfixturevalue("postgres_database")
    return f"{database}?schema=k{uuid.uuid4().hex[:12]}"


async def test_three_workers_and_a_kill_9_complete_10000_tasks_once_each(
    store_url: str, spawn: Spawn, tmp_path: Path
) -> None:
    store = open_store(store_url)
    log = tmp_path / "tasks.log"
    try:
        workers = [spawn(concurrency=32, lease=1.0, maintenance_interval=0.2) for _ in range(3)]
        for worker in workers:
            await worker.registered(store, timeout=30)
        policy = policy_of("wt.mark", max_retries=0)
        ids: list[str] = []
        for _ in range(10):
            batch = [new_task("wt.mark", policy=policy, log=str(log)) for _ in range(1000)]
            ids += [s.task.id for s in await store.submit(batch)]

        async def some_done() -> bool:
            found = await store.counts(since=0)
            done = sum(n for (_, _, s), n in found.tasks.items() if s == Status.COMPLETED)
            return done >= 2000

        await wait_for(some_done, 60, "2,000 tasks to complete", step=0.05)
        workers[0].signal(signal.SIGKILL)
        workers[0].wait(10)

        async def all_done() -> bool:
            found = await store.statuses(ids)
            return all(s == Status.COMPLETED for s in found.values()) and len(found) == len(ids)

        await wait_for(all_done, 75, "10,000 tasks to complete", step=0.25)
        records = await store.get(ids)
        assert len(records) == len(ids) == 10_000
        for record in records.values():
            completed = [a for a in record.attempts if a.outcome == "completed"]
            assert len(completed) == 1, record
            assert record.status == Status.COMPLETED
        assert all(w.proc.poll() is None for w in workers[1:])
        lost = sum(1 for r in records.values() if r.lost)
        print(f"kill -9 mid-run: {lost} task(s) lost a lease and ran again, each completed once")
    finally:
        await store.close()


async def test_a_server_restart_loses_no_accepted_submission_and_workers_carry_on(
    pg_server: PgServer, store_url: str, spawn: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "tasks.log"
    store = open_store(store_url)
    try:
        await store.check()
        workers = [spawn(concurrency=8, lease=2.0) for _ in range(2)]
        for worker in workers:
            await worker.registered(store, timeout=30)
        policy = policy_of("wt.mark", max_retries=0)
        accepted: list[str] = []
        refused = 0
        restarted = asyncio.Event()
        after_restart = 0

        async def submit_for(seconds: float) -> None:
            nonlocal refused, after_restart
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    [made] = await store.submit([new_task("wt.mark", policy=policy, log=str(log))])
                except StoreUnavailable:
                    refused += 1
                    await asyncio.sleep(0.02)
                    continue
                accepted.append(made.task.id)
                if restarted.is_set():
                    after_restart += 1

        submitting = asyncio.create_task(submit_for(6.0))
        await asyncio.sleep(2.0)
        await asyncio.to_thread(pg_server.stop)
        await asyncio.to_thread(pg_server.start)
        restarted.set()
        await asyncio.wait_for(submitting, 60)
        assert after_restart > 0, "no submission was accepted after the restart"

        async def all_done() -> bool:
            try:
                found = await store.statuses(accepted)
            except StoreUnavailable:
                return False
            return len(found) == len(accepted) and all(
                s == Status.COMPLETED for s in found.values()
            )

        await wait_for(all_done, 60, f"{len(accepted)} accepted tasks to complete", step=0.25)
        assert all(w.proc.poll() is None for w in workers), "a worker stopped"
        print(f"restart: {len(accepted)} accepted, {refused} refused while down, all completed")
    finally:
        await store.close()
