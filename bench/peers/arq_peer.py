"""arq: enqueue_job per task (arq has no bulk call: bulk is concurrent enqueue_job calls).

Fast settings: max_jobs 50, worker poll_delay 10 ms (default 500 ms), result poll 5 ms.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from arq import create_pool
from arq.connections import RedisSettings

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")


async def noop(ctx: dict[str, Any]) -> None:
    return None


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = 50
    poll_delay = 0.01


class ArqPeer:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def enqueue(self) -> str:
        job = await self.pool.enqueue_job("noop")
        return str(job.job_id)

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            jobs = await asyncio.gather(
                *(self.pool.enqueue_job("noop") for _ in range(min(1000, n - start)))
            )
            ids.extend(j.job_id for j in jobs)
        return ids

    async def done(self, ids: list[str]) -> int:
        return int(await self.pool.exists(*[f"arq:result:{i}" for i in ids]))

    async def round_trip(self) -> None:
        job = await self.pool.enqueue_job("noop")
        await job.result(timeout=30, poll_delay=0.005)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "arq", "arq_peer.WorkerSettings"]

    async def close(self) -> None:
        await self.pool.aclose()


async def make(target: str) -> ArqPeer:
    os.environ["BENCH_REDIS"] = target
    return ArqPeer(await create_pool(RedisSettings.from_dsn(target)))


if __name__ == "__main__":
    common.main(make)
