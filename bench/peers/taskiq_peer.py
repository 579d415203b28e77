"""taskiq with taskiq-redis (ListQueueBroker and the Redis result backend): kiq per task (bulk is
concurrent kiq calls); results through wait_result, polled every 5 ms (default 200 ms).
Fast settings: one worker process (--workers 1), 50 async tasks at once.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from redis.asyncio import Redis
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
backend: RedisAsyncResultBackend[None] = RedisAsyncResultBackend(URL)
broker = ListQueueBroker(URL).with_result_backend(backend)


@broker.task(task_name="noop")
async def noop() -> None:
    return None


class TaskiqPeer:
    async def enqueue(self) -> str:
        return str((await noop.kiq()).task_id)

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            sent = await asyncio.gather(*(noop.kiq() for _ in range(min(1000, n - start))))
            ids.extend(t.task_id for t in sent)
        return ids

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)

    async def done(self, ids: list[str]) -> int:
        return int(await self.redis.exists(*ids))

    async def round_trip(self) -> None:
        task = await noop.kiq()
        await task.wait_result(check_interval=0.005, timeout=30)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "taskiq", "worker", "taskiq_peer:broker"),
            *("--workers", "1", "--max-async-tasks", "50", "--log-level", "WARNING"),
        ]

    async def close(self) -> None:
        await self.redis.aclose()
        await broker.shutdown()


async def make(target: str) -> TaskiqPeer:
    os.environ["BENCH_REDIS"] = target
    await broker.startup()
    return TaskiqPeer(target)


if __name__ == "__main__":
    if "--target" in sys.argv:
        os.environ["BENCH_REDIS"] = sys.argv[sys.argv.index("--target") + 1]
    common.main(make)
