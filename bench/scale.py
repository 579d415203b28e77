"""How each store call's cost grows with the number of tasks stored.

One command: ``python bench/scale.py`` fills a fresh store per backend (a SQLite file in a
temporary folder; Redis in a private ``redis-server`` on a spare port, stopped when done;
PostgreSQL in a database made on ``--postgres`` and dropped when done, a schema per size) to
1,000 / 10,000 / 100,000 tasks (``--million`` adds 1,000,000) in a realistic mix: most
completed, some dead and cancelled, a backlog submitted and scheduled, a few running. At each
size it times store calls only (no HTTP), median of ``--reps`` calls, and prints one table per
backend. Each size has its own store, all measured in turn for three passes (the median pass
is printed), so a machine whose load changes during the run slows every size alike. Calls that
add tasks are small next to the store or deleted again, so each size holds.

After the largest size, four drain processes (each a loop of claim 10 / finish, as a worker's)
work through a backlog, which this process keeps stocked while it prunes up to 100,000 of the
oldest finished tasks; the claims' latency is printed with and without the prune beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from peers import PrivateRedis

from jobbers.ids import uuid7
from jobbers.models import NewTask, Outcome, Status, TaskFilter
from jobbers.store import open_store
from jobbers.store.base import Report, Store

NAMES = ("t.email", "t.report", "t.resize")
LEASE = 1e9
BATCH = 2000
#: Per BATCH tasks added: how many end in each state.
MIX = {"completed": 1700, "dead": 100, "cancelled": 20, "backlog": 100, "scheduled": 60, "run": 20}
DAY = 86_400.0
#: Seconds the fill's clock moves per batch.
STEP = 120.0


class Filler:
    """Adds tasks in the mix, on a clock that starts days ago and moves :data:`STEP` per batch.

    The step spreads the history as a busy deployment's would (about 1.4 million tasks a day):
    a window such as "the last hour" then holds the same seconds of finishes at every size past
    60,000 tasks, instead of the whole history squeezed into a few minutes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = time.time() - 30 * DAY
        self.ids: list[str] = []
        self.stored = 0
        #: (finish time, tasks finished then) in time order, for pruning the oldest.
        self.finishes: list[tuple[float, int]] = []

    def task(self, queue: str, **extra: object) -> NewTask:
        task = NewTask(uuid7(), random.choice(NAMES), {"n": len(self.ids)}, queue, **extra)  # type: ignore[arg-type]
        self.ids.append(task.id)
        return task

    async def batch(self) -> None:
        at = self.clock
        self.clock += STEP
        store = self.store
        done = [self.task("work") for _ in range(MIX["completed"] + MIX["dead"])]
        backlog = [self.task("backlog") for _ in range(MIX["backlog"] + MIX["cancelled"])]
        later = [self.task("work", due_at=at + 365 * DAY) for _ in range(MIX["scheduled"])]
        running = [self.task("slow") for _ in range(MIX["run"])]
        await store.submit([*done, *backlog, *later, *running], now=at)
        claimed = await store.claim("filler", ["work"], len(done), LEASE, now=at)
        reports = [
            Report(
                t.id,
                t.attempt,
                Outcome("completed", result=1) if i >= MIX["dead"] else Outcome("failed"),
            )
            for i, t in enumerate(claimed)
        ]
        await store.finish("filler", reports, now=at)
        await store.cancel([t.id for t in backlog[: MIX["cancelled"]]], now=at)
        await store.claim("filler", ["slow"], MIX["run"], LEASE, now=at)
        self.finishes.append((at, len(reports) + MIX["cancelled"]))
        self.stored += BATCH

    async def fill_to(self, size: int) -> float:
        started = time.perf_counter()
        while self.stored < size:
            await self.batch()
        return time.perf_counter() - started


async def median_ms(call: Callable[[], Awaitable[object]], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def page(store: Store, filters: TaskFilter, number: int) -> str | None:
    """The cursor of page ``number`` (1 = first) of 100, or None when the list is shorter."""
    cursor = None
    for _ in range(number - 1):
        found = await store.query(filters, 100, cursor)
        if found.cursor is None:
            return None
        cursor = found.cursor
    return cursor or ""


async def measure(
    store: Store, filler: Filler, reps: int, size_of: Callable[[], int], prune: bool
) -> dict[str, float]:
    """One pass of every call on one store; the tasks the pass submits are deleted again, so
    the store keeps its size and mix across passes."""
    row: dict[str, float] = {}
    now = filler.clock

    added: list[str] = []

    def task(queue: str) -> NewTask:
        new = filler.task(queue)
        filler.ids.pop()
        added.append(new.id)
        return new

    async def one() -> None:
        await store.submit([task("one")], now=now)

    row["submit one, ms"] = await median_ms(one, reps)

    async def bulk() -> None:
        await store.submit([task("bulk") for _ in range(1000)], now=now)

    row["bulk submit 1000, tasks/s"] = 1000 / (await median_ms(bulk, 3) / 1000)
    await store.submit([task("claims") for _ in range(10 * reps)], now=now)
    claims, renews, finishes = [], [], []
    for _ in range(reps):
        started = time.perf_counter()
        got = await store.claim("bench", ["claims"], 10, 60.0, now=now)
        claims.append(time.perf_counter() - started)
        leases = {t.id: t.attempt for t in got}
        started = time.perf_counter()
        await store.renew("bench", leases, 60.0, now=now)
        renews.append(time.perf_counter() - started)
        reports = [Report(t.id, t.attempt, Outcome("completed", result=1)) for t in got]
        started = time.perf_counter()
        await store.finish("bench", reports, now=now)
        finishes.append(time.perf_counter() - started)
    row["claim 10, ms"] = statistics.median(claims) * 1000
    row["renew 10, ms"] = statistics.median(renews) * 1000
    row["finish 10, ms"] = statistics.median(finishes) * 1000
    await store.cancel(added, now=now)
    await store.delete(added, [Status.CANCELLED, Status.COMPLETED])
    row["statuses of 100 ids, ms"] = await median_ms(
        lambda: store.statuses(random.sample(filler.ids, 100)), reps
    )
    lists = {
        "all": TaskFilter(),
        "status=completed": TaskFilter(status=Status.COMPLETED),
        "status=submitted": TaskFilter(status=Status.SUBMITTED),
        "status=dead": TaskFilter(status=Status.DEAD),
        "queue=backlog": TaskFilter(queue="backlog"),
        "name=t.report": TaskFilter(name="t.report"),
    }
    for label, filters in lists.items():
        row[f"list 100 {label}, ms"] = await median_ms(partial(store.query, filters, 100), reps)
        cursor = await page(store, filters, 50)
        if cursor:
            row[f"list 100 {label} page 50, ms"] = await median_ms(
                partial(store.query, filters, 100, cursor), 5
            )
    # As the dashboard asks: the last 60 minutes in whole minutes (the per-minute sums).
    hour_ago = now - now % 60 - 3540
    row["counts (last hour), ms"] = await median_ms(lambda: store.counts(hour_ago), reps)
    row["queue stats, ms"] = await median_ms(store.queue_stats, reps)
    middle = (await store.events(None, 1000))[-1].cursor
    row["events page of 100, ms"] = await median_ms(lambda: store.events(middle, 100), reps)
    before, pruned_tasks, i = None, 0, 0
    while prune and pruned_tasks < 1000 and i < len(filler.finishes):
        before, count = filler.finishes[i]
        pruned_tasks += count
        i += 1
    if before is not None:
        del filler.finishes[:i]
        started = time.perf_counter()
        pruned = await store.prune(before + 0.5)
        ms = (time.perf_counter() - started) * 1000
        filler.stored -= pruned
        row["prune, ms per 1000 finished"] = ms / max(pruned, 1) * 1000
    row["bytes per task"] = size_of() / max(filler.stored, 1)
    return row


def fmt(label: str, value: float) -> str:
    return f"{value:.2f}" if "ms" in label.split(", ")[-1] else f"{value:,.0f}"


DRAINERS = 4
DRAIN_QUEUE = "drain"
PRUNE_TASKS = 100_000
#: Seconds of drain before the prune starts and after it ends (claims outside the prune).
CALM = 2.0
#: Hard bound on the whole scenario.
DRAIN_LIMIT = 300.0


def stopped(stop_file: str) -> bool:
    return os.path.exists(stop_file)


#: The backlog is topped up whenever fewer than this many tasks wait, so it never runs dry.
LOW_WATER = 20_000


async def keep_stocked(store: Store, filler: Filler) -> None:
    """Submit more work as the drain processes take it, as producers would."""
    while True:
        depth = {q.config.name: q.depth for q in await store.queue_stats()}
        ready = depth.get(DRAIN_QUEUE, 0)
        if ready < LOW_WATER:
            await store.submit([filler.task(DRAIN_QUEUE) for _ in range(200)])
        else:
            await asyncio.sleep(0.1)


def drain(url: str, worker: str, stop_file: str) -> list[tuple[float, float]]:
    """One drain process: claim 10, finish them, until ``stop_file`` exists; returns each
    claim's (wall-clock start, milliseconds)."""

    async def run() -> list[tuple[float, float]]:
        store = open_store(url)
        await store.check()
        samples: list[tuple[float, float]] = []
        deadline = time.time() + DRAIN_LIMIT
        try:
            while not stopped(stop_file) and time.time() < deadline:
                at = time.time()
                started = time.perf_counter()
                got = await store.claim(worker, [DRAIN_QUEUE], 10, 60.0)
                samples.append((at, (time.perf_counter() - started) * 1000))
                if got:
                    outcome = Outcome("completed", result=1)
                    await store.finish(worker, [Report(t.id, t.attempt, outcome) for t in got])
                else:  # as a worker does: wait for work instead of asking again at once
                    await store.wait_for_change(0.05)
        finally:
            await store.close()
        return samples

    return asyncio.run(run())


def quantiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"{len(samples)} claims"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    top = max(samples)
    return f"{len(samples):,} claims: p50 {cuts[49]:.2f}, p99 {cuts[98]:.2f}, max {top:.2f}"


async def prune_while_draining(store: Store, url: str, filler: Filler, tmp: str) -> dict[str, str]:
    """Prune up to :data:`PRUNE_TASKS` of the oldest finished tasks while :data:`DRAINERS`
    processes drain a backlog; compare their claim latency during and outside the prune."""
    before, planned, i = None, 0, 0
    while planned < PRUNE_TASKS and i < len(filler.finishes):
        before, count = filler.finishes[i]
        planned += count
        i += 1
    if before is None:
        return {}
    del filler.finishes[:i]
    for _ in range(0, LOW_WATER, 5000):
        await store.submit([filler.task(DRAIN_QUEUE) for _ in range(5000)])
    stocking = asyncio.create_task(keep_stocked(store, filler))
    stop_file = os.path.join(tmp, "drain.stop")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(DRAINERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [
            loop.run_in_executor(pool, drain, url, f"drainer-{n}", stop_file)
            for n in range(DRAINERS)
        ]
        await asyncio.sleep(CALM * 2)  # the processes start, then run unhindered for a while
        prune_start = time.time()
        started = time.perf_counter()
        pruned = await store.prune(before + 0.5)
        took = time.perf_counter() - started
        prune_end = time.time()
        await asyncio.sleep(CALM)
        await loop.run_in_executor(None, Path(stop_file).touch)
        results = await asyncio.gather(*runs)
    stocking.cancel()
    os.unlink(stop_file)
    filler.stored -= pruned
    during = [ms for samples in results for at, ms in samples if prune_start <= at < prune_end]
    outside = [
        ms
        for samples in results
        for at, ms in samples
        if prune_start - CALM * 1.5 <= at < prune_start or prune_end <= at
    ]
    return {
        "pruned": f"{pruned:,} tasks in {took:.1f} s",
        "claim latency during the prune, ms": quantiles(during),
        "claim latency outside it, ms": quantiles(outside),
    }


async def warm(store: Store, filler: Filler) -> None:
    """Read every task's status once: a long-running process has its store's pages in memory
    (Redis always; SQLite's memory map once touched), and a first touch is not the call's cost."""
    for i in range(0, len(filler.ids), 500):
        await store.statuses(filler.ids[i : i + 500])


#: Passes of every call over every store, interleaved; each figure is the median of them.
PASSES = 3


async def run_backend(
    name: str, urls: dict[int, str], reps: int, size_of: dict[int, Callable[[], int]], tmp: str
) -> tuple[dict[int, dict[str, str]], dict[str, str]]:
    """One store per size, all open at once, measured in turn pass after pass: a machine that
    gets busier during the run then slows every size alike instead of the last one."""
    stores: dict[int, tuple[Store, Filler]] = {}
    try:
        for size, url in urls.items():
            store = open_store(url)
            stores[size] = (store, Filler(store))
            await store.check()
            took = await stores[size][1].fill_to(size)
            print(f"{name}: {size:,} tasks stored (fill {took:.1f} s)", file=sys.stderr)
        for store, filler in stores.values():
            await warm(store, filler)
        passes: dict[int, dict[str, list[float]]] = {size: {} for size in stores}
        for n in range(PASSES):
            print(f"{name}: measuring, pass {n + 1} of {PASSES}", file=sys.stderr)
            for size, (store, filler) in stores.items():
                row = await measure(store, filler, reps, size_of[size], prune=n == PASSES - 1)
                for label, value in row.items():
                    passes[size].setdefault(label, []).append(value)
        table = {
            size: {label: fmt(label, statistics.median(v)) for label, v in rows.items()}
            for size, rows in passes.items()
        }
        largest = max(stores)
        print(f"{name}: pruning while {DRAINERS} processes drain", file=sys.stderr)
        store, filler = stores[largest]
        drained = await prune_while_draining(store, urls[largest], filler, tmp)
    finally:
        for store, _ in stores.values():
            await store.close()
    return table, drained


def print_table(name: str, table: dict[int, dict[str, str]], drained: dict[str, str]) -> None:
    sizes = list(table)
    rows = list(dict.fromkeys(k for row in reversed(table.values()) for k in row))
    rows.sort(key=lambda label: label == "bytes per task")
    print(f"\n### {name}\n")
    print("| tasks stored | " + " | ".join(f"{s:,}" for s in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for row in rows:
        print(f"| {row} | " + " | ".join(table[s].get(row, "") for s in sizes) + " |")
    if drained:
        print(f"\nPrune beside {DRAINERS} drain processes, at {sizes[-1]:,} tasks stored:\n")
        for key, value in drained.items():
            print(f"- {key}: {value}")


def redis_memory(url: str) -> Callable[[], int]:
    import redis

    client = redis.Redis.from_url(url)

    def used() -> int:
        return int(client.info("memory")["used_memory"])

    return used


async def pg_admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_bytes(url: str, schema: str) -> Callable[[], int]:
    """The schema's tables with their indexes, on disk (asked through psql: the caller runs
    inside the event loop)."""
    import subprocess

    sql = (
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}'"
        " AND c.relkind = 'r'"
    )

    def used() -> int:
        out = subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True)
        return int(out.stdout.decode().strip())

    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--million", action="store_true", help="also fill to 1,000,000 tasks")
    parser.add_argument("--backend", choices=("sqlite", "redis", "postgres"), action="append")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server for the PostgreSQL column: a database is made there and dropped after",
    )
    parser.add_argument("--reps", type=int, default=10, help="calls per median (default 10)")
    parser.add_argument("--max-size", type=int, default=None, help="stop at this size")
    args = parser.parse_args()
    sizes = [1_000, 10_000, 100_000] + ([1_000_000] if args.million else [])
    if args.max_size:
        sizes = [s for s in sizes if s <= args.max_size]
    backends = args.backend or ["sqlite", "redis", "postgres"]
    random.seed(14)
    with tempfile.TemporaryDirectory(prefix="jobbers-scale-") as tmp:
        if "sqlite" in backends:
            paths = {size: Path(tmp) / f"scale-{size}.db" for size in sizes}

            def file_bytes(path: Path) -> Callable[[], int]:
                return lambda: sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

            table, drained = asyncio.run(
                run_backend(
                    "sqlite",
                    {size: f"sqlite:///{path}" for size, path in paths.items()},
                    args.reps,
                    {size: file_bytes(path) for size, path in paths.items()},
                    tmp,
                )
            )
            print_table("SQLite (file bytes per task)", table, drained)
        if "redis" in backends:
            servers = {size: PrivateRedis() for size in sizes}
            try:
                table, drained = asyncio.run(
                    run_backend(
                        "redis",
                        {size: server.url for size, server in servers.items()},
                        args.reps,
                        {size: redis_memory(server.url) for size, server in servers.items()},
                        tmp,
                    )
                )
            finally:
                for server in servers.values():
                    server.stop()
            print_table("Redis (used_memory bytes per task)", table, drained)
        if "postgres" in backends:
            database = f"jobbers_scale_{os.getpid()}"
            asyncio.run(pg_admin(args.postgres, f"CREATE DATABASE {database}"))
            try:
                url = f"{args.postgres}/{database}"
                table, drained = asyncio.run(
                    run_backend(
                        "postgres",
                        {size: f"{url}?schema=s{size}" for size in sizes},
                        args.reps,
                        {size: pg_bytes(url, f"s{size}") for size in sizes},
                        tmp,
                    )
                )
            finally:
                asyncio.run(pg_admin(args.postgres, f"DROP DATABASE {database} WITH (FORCE)"))
            print_table("PostgreSQL (table and index bytes per task)", table, drained)


if __name__ == "__main__":
    main()
