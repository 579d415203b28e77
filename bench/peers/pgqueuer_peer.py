"""pgqueuer (PostgreSQL, asyncpg): ``Queries.enqueue`` per task, and with lists per 1,000;
finished jobs leave the queue table, so a round trip polls for its job to be gone every 2 ms.
Fast settings: the worker (``PgQueuer.run()`` from this file: ``pgq run``'s logging set-up fails
with the Typer this installs) runs the entrypoint with concurrency 50.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import asyncpg
import common
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

URL = os.environ.get("BENCH_PG", "")


async def main() -> PgQueuer:
    """The worker's application."""
    conn = await asyncpg.connect(URL)
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("noop", concurrency_limit=50)
    async def noop(job: Job) -> None:
        return None

    return pgq


class PgqueuerPeer:
    def __init__(self, conn: asyncpg.Connection, queries: Queries) -> None:
        self.conn = conn
        self.queries = queries

    async def enqueue(self) -> str:
        [job_id] = await self.queries.enqueue("noop", None)
        return str(job_id)

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            k = min(1000, n - start)
            made = await self.queries.enqueue(["noop"] * k, [None] * k, [0] * k)
            ids.extend(str(i) for i in made)
        return ids

    async def done(self, ids: list[str]) -> int:
        left = await self.conn.fetchval("SELECT count(*) FROM pgqueuer")
        return len(ids) - int(left)

    async def round_trip(self) -> None:
        [job_id] = await self.queries.enqueue("noop", None)
        for _ in range(15_000):
            if not await self.conn.fetchval("SELECT 1 FROM pgqueuer WHERE id = $1", job_id):
                return
            await asyncio.sleep(0.002)
        raise RuntimeError(f"job {job_id} did not finish within 30 s")

    def worker_command(self) -> list[str]:
        return [sys.executable, "pgqueuer_peer.py", "--worker"]

    async def close(self) -> None:
        await self.conn.close()


async def make(target: str) -> PgqueuerPeer:
    conn = await asyncpg.connect(target)
    queries = Queries(AsyncpgDriver(conn))
    await queries.install()
    return PgqueuerPeer(conn, queries)


async def work() -> None:
    pgq = await main()
    await pgq.run()


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        asyncio.run(work())
    else:
        common.main(make)
