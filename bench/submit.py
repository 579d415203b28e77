"""Getting work in: submissions per second through each path a producer can take.

    .venv/bin/python bench/submit.py [--tasks 2000] [--rounds 3] [--no-redis]

Starts one ``jobbers manager`` on a fresh SQLite file and a spare port, then measures, interleaved
for several rounds: one-by-one HTTP submits from a sequential client (``jobbers.Client``, and bare
``http.client`` to show the server's own cost), the same from 16 concurrent
async clients (what group commit helps), bulk submits of 1,000 per call, and the store-backed
producer one by one and in bulk (no HTTP), on SQLite and on a private ``redis-server`` (skipped
when none is installed, or with ``--no-redis``). Prints the median of each. The machine's load
changes the figures; compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jobbers import AsyncClient, Client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import PrivateRedis  # the private redis-server bench/peers.py uses

BULK = 1000
CONCURRENT = 16


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_manager(store_url: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "jobbers", "manager", "--store", store_url),
            *("--port", str(port), "--tasks", "jobbers.examples", "--log-level", "WARNING"),
        ]
    )
    deadline = time.monotonic() + 30
    with Client(f"http://127.0.0.1:{port}") as client:
        while True:
            try:
                client.healthz()
                return proc
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError("the Manager did not start") from None
                time.sleep(0.1)


def http_one_by_one(url: str, n: int) -> float:
    with Client(url) as client:
        started = time.perf_counter()
        for i in range(n):
            client.submit("add", {"x": i, "y": 1})
        return n / (time.perf_counter() - started)


def http_raw(url: str, n: int) -> float:
    """The same requests from http.client: what the server can do when the client costs little."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    for i in range(n):
        conn.request(
            "POST", "/tasks", json.dumps({"name": "add", "kwargs": {"x": i, "y": 1}}), headers
        )
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"submit answered {response.status}")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def http_concurrent(url: str, n: int) -> float:
    async def run() -> float:
        async with AsyncClient(url) as client:

            async def one_lane(lane: int) -> None:
                for i in range(lane, n, CONCURRENT):
                    await client.submit("add", {"x": i, "y": 1})

            started = time.perf_counter()
            await asyncio.gather(*(one_lane(lane) for lane in range(CONCURRENT)))
            return n / (time.perf_counter() - started)

    return asyncio.run(run())


def http_bulk(url: str, n: int) -> float:
    calls = max(1, n * 5 // BULK)
    batch = [{"name": "add", "kwargs": {"x": i, "y": 1}} for i in range(BULK)]
    with Client(url, timeout=60) as client:
        started = time.perf_counter()
        for _ in range(calls):
            client.submit_many(batch)
        return calls * BULK / (time.perf_counter() - started)


def producer_one_by_one(store_url: str, n: int) -> float:
    try:
        from jobbers.producer import Producer
    except ImportError:
        return store_direct(store_url, n)
    import jobbers.examples as examples

    with Producer(store_url) as producer:
        started = time.perf_counter()
        for i in range(n):
            producer.submit("add", {"x": i, "y": 1})
        rate = n / (time.perf_counter() - started)
    del examples
    return rate


def producer_bulk(store_url: str, n: int) -> float:
    import jobbers.examples  # noqa: F401
    from jobbers.producer import Producer

    calls = max(1, n * 5 // BULK)
    batch = [{"name": "add", "kwargs": {"x": i, "y": 1}} for i in range(BULK)]
    with Producer(store_url) as producer:
        started = time.perf_counter()
        for _ in range(calls):
            producer.submit_many(batch)
        return calls * BULK / (time.perf_counter() - started)


def store_direct(store_url: str, n: int) -> float:
    """What ``jobbers submit --store`` does per task, in one process: validate, build, store."""
    import jobbers.examples  # noqa: F401
    from jobbers import intake
    from jobbers.catalog import TaskCatalog
    from jobbers.store import open_store

    async def run() -> float:
        store = open_store(store_url)
        catalog = TaskCatalog(store)
        write = intake.store_writer(store)
        try:
            started = time.perf_counter()
            for i in range(n):
                sub = intake.parse_one({"name": "add", "kwargs": {"x": i, "y": 1}})
                await intake.submit_one(sub, catalog, write)
            return n / (time.perf_counter() - started)
        finally:
            await store.close()

    return asyncio.run(run())


def run_all(n: int, rounds: int, redis: PrivateRedis | None) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'submit.db'}"
        port = spare_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_manager(store_url, port)
        scenarios: dict[str, Callable[[], float]] = {
            "HTTP one by one (sequential jobbers.Client)": lambda: http_one_by_one(url, n),
            "HTTP one by one (sequential http.client)": lambda: http_raw(url, n),
            f"HTTP one by one ({CONCURRENT} concurrent)": lambda: http_concurrent(url, n),
            f"HTTP bulk ({BULK} per call)": lambda: http_bulk(url, n),
            "producer one by one (no HTTP)": lambda: producer_one_by_one(store_url, n),
            f"producer bulk ({BULK} per call)": lambda: producer_bulk(store_url, n),
        }
        if redis is not None:
            redis_url = redis.url
            scenarios["producer one by one, Redis"] = lambda: producer_one_by_one(redis_url, n)
            scenarios[f"producer bulk ({BULK} per call), Redis"] = lambda: producer_bulk(
                redis_url, n
            )
        results: dict[str, list[float]] = {name: [] for name in scenarios}
        try:
            for _ in range(rounds):
                for name, run in scenarios.items():
                    results[name].append(run())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="submissions per one-by-one run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-redis", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if not 10 <= args.tasks <= 20_000 or not 1 <= args.rounds <= 10:
        raise SystemExit("--tasks must be 10..20000 and --rounds 1..10")
    redis = None if args.no_redis or shutil.which("redis-server") is None else PrivateRedis()
    try:
        results = run_all(args.tasks, args.rounds, redis)
    finally:
        if redis is not None:
            redis.stop()
    load = os.getloadavg()
    print(
        f"\nJobbers submission, SQLite unless noted, {args.rounds} rounds,"
        f" load {load[0]:.2f} {load[1]:.2f}\n"
    )
    print("| path | median tasks/s | all rounds |")
    print("|------|---------------:|------------|")
    for name, rates in results.items():
        shown = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"| {name} | {statistics.median(rates):,.0f} | {shown} |")


if __name__ == "__main__":
    main()
