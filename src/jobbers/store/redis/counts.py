"""Reading the Redis store's summed counts: the scripts keep them current with every status
change, so a read costs O(queues + groups + finish seconds, or minutes, in the window), never
O(tasks)."""

from __future__ import annotations

import json
import math
from typing import Any

from jobbers.models import Status
from jobbers.store.base import Durations, TaskCounts
from jobbers.store.redis.keys import Keys
from jobbers.store.tally import OVER, STATUS, by_minute, durations, finish_buckets, split_totals


def _histogram(h: dict[str, str]) -> Durations:
    slots = {OVER if k == "inf" else int(k): int(n) for k, n in h.items() if k not in ("n", "sum")}
    return durations(slots, float(h.get("sum", 0.0)))


async def fill_minutes(client: Any, rebuild: Any, keys: Keys) -> None:
    """Schema 2 kept finishes per second only: each kept hour's minutes are made from its
    seconds by one script (``minutes.lua``) per hour, so none blocks Redis for long."""
    for hour in await client.zrange(keys.finish_hours, 0, -1):
        await rebuild(keys=[keys.meta], args=[keys.base, "0", "0", hour])


async def read_counts(client: Any, keys: Keys, since: float, bucket: float) -> TaskCounts:
    """Finishes are counted per second: one that lands in the second holding ``since`` counts.
    A window of whole minutes reads the per-minute hashes, which give the same buckets."""
    pipe = client.pipeline(transaction=False)
    pipe.smembers(keys.queues)
    pipe.zrangebyscore(keys.finish_hours, math.floor(since // 3600), "+inf")
    names, hours = await pipe.execute()
    names = sorted(names)
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.counts)
    pipe.hgetall(keys.retries)
    pipe.hgetall(keys.totals)
    for name in names:
        pipe.zrange(keys.queue(name, "since"), 0, 0, withscores=True)
        pipe.hgetall(keys.histogram("wait", name))
        pipe.hgetall(keys.histogram("run", name))
    summed_by = keys.finish_minutes if by_minute(since, bucket) else keys.finishes
    for hour in hours:
        pipe.hgetall(summed_by(hour))
    found = await pipe.execute()
    grouped, summed, kept = found[0], found[1], found[2]
    found = found[1:]
    tasks: dict[tuple[str, str, Status], int] = {}
    retries: dict[tuple[str, str], int] = {}
    for field, n in grouped.items():
        queue, name, status = json.loads(field)
        tasks[(queue, name, STATUS[status])] = int(n)
        retries[(queue, name)] = 0
    for field, n in summed.items():
        queue, name = json.loads(field)
        if (queue, name) in retries:
            retries[(queue, name)] = int(n)
    oldest: dict[str, float] = {}
    wait: dict[str, Durations] = {}
    run: dict[str, Durations] = {}
    for i, name in enumerate(names):
        first, waits, runs = found[2 + 3 * i : 5 + 3 * i]
        if first:
            oldest[name] = float(first[0][1])
        if waits:
            wait[name] = _histogram(waits)
        if runs:
            run[name] = _histogram(runs)
    seconds = []
    for h in found[2 + 3 * len(names) :]:
        for field, n in h.items():
            second, status = field.split("|")
            seconds.append((int(second), status, int(n)))
    finished = finish_buckets(seconds, since, bucket)
    totals, timings = split_totals((*json.loads(field), float(n)) for field, n in kept.items())
    return TaskCounts(tasks, retries, oldest, finished, wait, run, totals, timings)
