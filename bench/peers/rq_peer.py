"""RQ: Queue.enqueue per task, enqueue_many (one pipeline) for bulk; results through
Job.latest_result(timeout). Fast settings: SimpleWorker (no fork per job). RQ is synchronous and
runs one job at a time per worker process.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from redis import Redis
from rq import Queue


def noop() -> None:
    return None


#: By name: the harness runs as __main__, whose functions RQ refuses to enqueue.
NOOP = "rq_peer.noop"


class RqPeer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = Redis.from_url(url)
        self.queue = Queue("bench", connection=self.redis)

    async def enqueue(self) -> str:
        return str(self.queue.enqueue(NOOP).id)

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 1000):
            data = [Queue.prepare_data(NOOP) for _ in range(min(1000, n - start))]
            ids.extend(j.id for j in self.queue.enqueue_many(data))
        return ids

    async def done(self, ids: list[str]) -> int:
        return int(self.queue.finished_job_registry.count)

    async def round_trip(self) -> None:
        job = self.queue.enqueue(NOOP)
        result: Any = job.latest_result(timeout=30)
        if result is None:
            raise RuntimeError("no result")

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-c", "from rq.cli import main; main()", "worker", "bench"),
            *("--url", self.url, "--worker-class", "rq.worker.SimpleWorker", "--quiet"),
        ]

    async def close(self) -> None:
        self.redis.close()


async def make(target: str) -> RqPeer:
    return RqPeer(target)


if __name__ == "__main__":
    common.main(make)
