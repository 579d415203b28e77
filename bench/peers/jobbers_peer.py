"""Jobbers through the path the docs recommend for producers: a store producer (no HTTP).

Target ``STORE_URL`` submits with :class:`jobbers.AsyncProducer`; ``http+STORE_URL`` starts a
``jobbers manager`` on that store and submits through :class:`jobbers.AsyncClient` instead. The
worker is one ``jobbers worker`` process, concurrency 50; tasks are ``jobbers.examples.sleep(0)``
(an async no-op), validated against its signature like any submission.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

import jobbers.examples  # noqa: F401  (sleep: the no-op task)
from jobbers import AsyncClient, AsyncProducer
from jobbers.store import open_store

NOOP = ("sleep", {"seconds": 0})
BULK = 1000


class JobbersPeer:
    def __init__(self, store_url: str, via_http: bool) -> None:
        self.store_url = store_url
        self.store = open_store(store_url)
        self.manager: subprocess.Popen[bytes] | None = None
        self.source: Any
        if via_http:
            port = _spare_port()
            self.manager = subprocess.Popen(
                [
                    *(sys.executable, "-m", "jobbers", "manager", "--store", store_url),
                    *("--port", str(port), "--tasks", "jobbers.examples", "--log-level", "WARNING"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.source = AsyncClient(f"http://127.0.0.1:{port}", timeout=60)
        else:
            self.source = AsyncProducer(store_url, inline=True)

    async def ready(self) -> None:
        if self.manager is None:
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                await self.source.healthz()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def enqueue(self) -> str:
        task = await self.source.submit(*NOOP)
        return str(task["id"])

    async def enqueue_many(self, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, BULK):
            batch = [{"name": NOOP[0], "kwargs": NOOP[1]}] * min(BULK, n - start)
            ids.extend(t["id"] for t in await self.source.submit_many(batch))
        return ids

    async def done(self, ids: list[str]) -> int:
        stats = await self.store.queue_stats()
        return len(ids) - sum(s.depth + s.running + s.scheduled for s in stats)

    async def round_trip(self) -> None:
        task = await self.source.submit(*NOOP)
        await self.source.wait(task["id"], timeout=30)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "jobbers", "worker", "--store", self.store_url),
            *("--tasks", "jobbers.examples", "--concurrency", "50", "--log-level", "WARNING"),
        ]

    async def close(self) -> None:
        await self.source.close()
        await self.store.close()
        if self.manager is not None:
            self.manager.send_signal(signal.SIGTERM)
            self.manager.wait(30)


def _spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def make(target: str) -> JobbersPeer:
    via_http = target.startswith("http+")
    peer = JobbersPeer(target.removeprefix("http+"), via_http)
    await peer.ready()
    return peer


if __name__ == "__main__":
    common.main(make)
