"""saq on its PostgreSQL queue: Queue.enqueue per task (no bulk call: bulk is concurrent enqueue
calls); results are awaited with Job.refresh(until_complete). Fast settings: concurrency 50.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from saq import Queue

URL = os.environ.get("BENCH_PG", "")


async def noop(ctx: dict[str, Any]) -> None:
    return None


settings = {"queue": Queue.from_url(URL), "functions": [noop], "concurrency": 50}


class SaqPostgresPeer:
    def __init__(self, queue: Any) -> None:
        self.queue = queue

    async def enqueue(self) -> str:
        job = await self.queue.enqueue("noop")
        return str(job.key)

    async def enqueue_many(self, n: int) -> list[str]:
        keys: list[str] = []
        for start in range(0, n, 1000):
            jobs = await asyncio.gather(
                *(self.queue.enqueue("noop") for _ in range(min(1000, n - start)))
            )
            keys.extend(j.key for j in jobs)
        return keys

    async def done(self, ids: list[str]) -> int:
        return len(ids) - int(await self.queue.count("incomplete"))

    async def round_trip(self) -> None:
        job = await self.queue.enqueue("noop")
        await job.refresh(until_complete=30)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "saq", "saq_postgres_peer.settings", "--quiet"]

    async def close(self) -> None:
        await self.queue.disconnect()


async def make(target: str) -> SaqPostgresPeer:
    queue = Queue.from_url(target)
    await queue.connect()
    return SaqPostgresPeer(queue)


if __name__ == "__main__":
    common.main(make)
