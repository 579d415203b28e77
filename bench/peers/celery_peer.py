"""Celery with Redis as broker and result backend: apply_async per task (bulk: the same over one
producer connection, Celery has no bulk publish); results through AsyncResult.get (pub/sub).
Fast settings: one worker process with the solo pool, without gossip, mingle and heartbeat.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from celery import Celery

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
app = Celery("celery_peer", broker=URL, backend=URL)
app.conf.update(task_serializer="json", result_serializer="json", worker_hijack_root_logger=False)


@app.task(name="noop")
def noop() -> None:
    return None


class CeleryPeer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = app.backend.client

    async def enqueue(self) -> str:
        return str(noop.delay().id)

    async def enqueue_many(self, n: int) -> list[str]:
        with app.producer_or_acquire() as producer:
            return [str(noop.apply_async(producer=producer).id) for _ in range(n)]

    async def done(self, ids: list[str]) -> int:
        keys = [f"celery-task-meta-{i}" for i in ids]
        return sum(int(self.redis.exists(*keys[i : i + 5000])) for i in range(0, len(keys), 5000))

    async def round_trip(self) -> None:
        noop.delay().get(timeout=30)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "--pool", "solo"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"),
        ]

    async def close(self) -> None:
        app.close()


async def make(target: str) -> CeleryPeer:
    os.environ["BENCH_REDIS"] = target
    return CeleryPeer(target)


if __name__ == "__main__":
    if "--target" in sys.argv:
        os.environ["BENCH_REDIS"] = sys.argv[sys.argv.index("--target") + 1]
        app.conf.update(
            broker_url=os.environ["BENCH_REDIS"], result_backend=os.environ["BENCH_REDIS"]
        )
    common.main(make)
