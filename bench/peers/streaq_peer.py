"""streaQ: Task.enqueue per task, Worker.enqueue_many (one pipeline) for bulk; results through
Task.result(timeout). Fast settings: concurrency 50; streaQ pickles by default.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from streaq import Worker

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
worker = Worker(redis_url=URL, concurrency=50)


@worker.task
async def noop() -> None:
    return None


class StreaqPeer:
    def __init__(self, context: Any) -> None:
        self.context = context

    async def enqueue(self) -> str:
        return str((await noop.enqueue()).id)

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            tasks = [noop.enqueue() for _ in range(min(1000, n - start))]
            await worker.enqueue_many(tasks)
            ids.extend(t.id for t in tasks)
        return ids

    async def done(self, ids: list[str]) -> int:
        keys = [worker.results_key + i for i in ids]
        return int(await worker.redis.exists(keys))

    async def round_trip(self) -> None:
        task = await noop.enqueue()
        await task.result(timeout=30)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "streaq", "run", "streaq_peer:worker"]

    async def close(self) -> None:
        await self.context.__aexit__(None, None, None)


async def make(target: str) -> StreaqPeer:
    os.environ["BENCH_REDIS"] = target
    context = worker.__asynccontextmanager__()
    await context.__aenter__()
    return StreaqPeer(context)


if __name__ == "__main__":
    if "--target" in sys.argv:
        os.environ["BENCH_REDIS"] = sys.argv[sys.argv.index("--target") + 1]
    common.main(make)
