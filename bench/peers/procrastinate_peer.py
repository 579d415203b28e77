"""procrastinate (PostgreSQL): ``defer_async`` per task, ``batch_defer_async`` per 1,000; no
result API, so a round trip polls the job's status every 2 ms. Fast settings: worker concurrency
50, LISTEN/NOTIFY on (its default), polling every 0.1 s as the fallback (default 5 s).
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
import procrastinate

URL = os.environ.get("BENCH_PG", "")

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=URL))


@app.task(name="noop")
async def noop() -> None:
    return None


class ProcrastinatePeer:
    async def enqueue(self) -> str:
        return str(await noop.defer_async())

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            made = await noop.batch_defer_async(*({} for _ in range(min(1000, n - start))))
            ids.extend(str(i) for i in made)
        return ids

    async def done(self, ids: list[str]) -> int:
        row = await app.connector.execute_query_one_async(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        return int(row["n"])

    async def round_trip(self) -> None:
        job_id = await noop.defer_async()
        for _ in range(15_000):
            row = await app.connector.execute_query_one_async(
                "SELECT status FROM procrastinate_jobs WHERE id = %(id)s", id=job_id
            )
            if row["status"] == "succeeded":
                return
            await asyncio.sleep(0.002)
        raise RuntimeError(f"job {job_id} did not succeed within 30 s")

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "procrastinate", "--app=procrastinate_peer.app", "worker"),
            *("--concurrency=50", "--fetch-job-polling-interval=0.1"),
        ]

    async def close(self) -> None:
        await app.close_async()


async def make(target: str) -> ProcrastinatePeer:
    await app.open_async()
    await app.schema_manager.apply_schema_async()
    return ProcrastinatePeer()


if __name__ == "__main__":
    common.main(make)
