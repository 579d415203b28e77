"""saq: Queue.enqueue per task (no bulk call: bulk is concurrent enqueue calls); results are
awaited with Job.refresh(until_complete), which listens on pub/sub. Fast settings: concurrency 50.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from saq import Queue

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")


async def noop(ctx: dict[str, Any]) -> None:
    return None


settings = {"queue": Queue.from_url(URL), "functions": [noop], "concurrency": 50}


class SaqPeer:
    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self._held: asyncio.Task[None] | None = None

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

    async def hold_listener(self) -> None:
        """Keep saq's pub/sub multiplexer subscribed between round trips.

        ``Job.refresh(until_complete)`` reads the job, then subscribes; the multiplexer closes
        its subscription when nobody listens and subscribes again on the next call. A job that
        ends before that subscription is in place is never heard of, and the call sleeps its
        whole timeout (30 s here), which fails the scenario. A listener on a channel no job uses
        keeps the subscription up, as it is in an application that always has a waiter."""
        self._held = asyncio.create_task(
            self.queue.listen(["bench-held-open"], lambda _key, _status: False, None)
        )
        deadline = time.monotonic() + 10
        while not await self.queue.redis.execute_command("PUBSUB", "NUMPAT"):
            if time.monotonic() > deadline:
                raise RuntimeError("saq's pub/sub listener did not subscribe within 10 s")
            await asyncio.sleep(0.01)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "saq", "saq_peer.settings", "--quiet"]

    async def close(self) -> None:
        if self._held is not None:
            self._held.cancel()
        await self.queue.disconnect()


async def make(target: str) -> SaqPeer:
    os.environ["BENCH_REDIS"] = target
    queue = Queue.from_url(target)
    await queue.connect()
    peer = SaqPeer(queue)
    await peer.hold_listener()
    return peer


if __name__ == "__main__":
    common.main(make)
