"""The Redis store's layout version: the one before is upgraded in place, any other refused."""

from __future__ import annotations

import uuid

import pytest
import redis

from jobbers.models import NewTask, Outcome, Status
from jobbers.store import open_store
from jobbers.store.base import ANY_TASK, Report, StoreIncompatible
from jobbers.store.redis.keys import PREVIOUS_VERSION, SCHEMA_VERSION, Keys

from ..conftest import RedisServer

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0


def prefixed(server: RedisServer) -> tuple[str, Keys]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    return f"{server.url}?prefix={prefix}", Keys.for_prefix(prefix)


async def test_a_schema_2_store_gains_minute_sums_filled_from_its_seconds(
    redis_server: RedisServer,
) -> None:
    """Schema 2 summed finishes per second only: opening it fills each hour's minutes from its
    seconds, then stamps the current schema, and later changes keep both."""
    url, keys = prefixed(redis_server)
    m = T0 - T0 % 60 + 60  # 780 s before an hour ends: the finishes span two hours
    ids = [f"t{i}" for i in range(6)]
    store = open_store(url)
    try:
        await store.submit([NewTask(i, "t.add", {}) for i in ids], now=m - 10)
        await store.claim("w", ["default"], 6, 1e6, now=m - 5)
        for n, at in enumerate((0.5, 59.5, 60.0, 800.0)):
            await store.finish("w", [Report(ids[n], 1, Outcome("completed"))], now=m + at)
    finally:
        await store.close()
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    hours: list[str] = raw.zrange(keys.finish_hours, 0, -1)  # type: ignore[assignment]
    assert len(hours) == 2
    raw.delete(*(keys.finish_minutes(hour) for hour in hours))
    raw.hset(keys.meta, "schema", PREVIOUS_VERSION)
    store = open_store(url)
    try:
        await store.check()
        assert raw.hget(keys.meta, "schema") == SCHEMA_VERSION
        done = Status.COMPLETED
        assert (await store.counts(since=m, bucket=60)).finished == {
            (m, done): 2,
            (m + 60, done): 1,
            (m + 780, done): 1,
        }
        await store.finish("w", [Report(ids[4], 1, Outcome("completed"))], now=m + 61)
        assert await store.delete([ids[0]], [done]) == [ids[0]]
        assert (await store.counts(since=m, bucket=60)).finished == {
            (m, done): 1,
            (m + 60, done): 2,
            (m + 780, done): 1,
        }
    finally:
        await store.close()
        raw.close()


@pytest.mark.parametrize("found", ["1", str(int(SCHEMA_VERSION) + 1)])
async def test_another_schema_is_refused(found: str, redis_server: RedisServer) -> None:
    url, keys = prefixed(redis_server)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    raw.hset(keys.meta, "schema", found)
    store = open_store(url)
    try:
        with pytest.raises(StoreIncompatible, match=f"store schema '{found}'"):
            await store.check()
        assert raw.hget(keys.meta, "schema") == found
    finally:
        await store.close()
        raw.close()


async def test_a_cancellation_published_before_the_subscription_still_reaches_the_worker(
    redis_server: RedisServer,
) -> None:
    """A worker's listener subscribes in the background: a cancel published before it is
    subscribed is not heard, so its first answer says to renew at once (the renewal reports
    the cancelled task)."""
    url, _ = prefixed(redis_server)
    other, worker = open_store(url), open_store(url)
    try:
        await other.submit([NewTask("c1", "t.add", {})])
        await other.claim("w", ["default"], 1, 60.0)
        await other.cancel(["c1"])
        assert ANY_TASK in await worker.wait_for_cancel(5.0)
        assert (await worker.renew("w", {"c1": 1}, 60.0)).lost == ["c1"]
    finally:
        await other.close()
        await worker.close()


async def test_a_store_without_totals_starts_them_once_from_its_sums(
    redis_server: RedisServer,
) -> None:
    """A store written before the monotonic totals gets them from the sums it keeps, once: a
    second process opening it adds nothing, and later steps move them."""
    url, keys = prefixed(redis_server)
    store = open_store(url)
    try:
        await store.submit([NewTask(i, "t.add", {}) for i in "abc"], now=T0)
        await store.claim("w", ["default"], 2, 10.0, now=T0 + 1)
        await store.finish("w", [Report("a", 1, Outcome("completed"))], now=T0 + 2)
    finally:
        await store.close()
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    raw.delete(keys.totals)
    raw.hdel(keys.meta, "totals")
    try:
        for _ in range(2):
            store = open_store(url)
            try:
                await store.check()
                totals = (await store.counts(since=T0)).totals
            finally:
                await store.close()
            assert totals == {
                ("default", "t.add", "submitted"): 3,
                ("default", "t.add", "started"): 2,
                ("default", "t.add", "finished:completed"): 1,
            }
        store = open_store(url)
        try:
            await store.finish("w", [Report("b", 1, Outcome("completed"))], now=T0 + 3)
            totals = (await store.counts(since=T0)).totals
        finally:
            await store.close()
        assert totals[("default", "t.add", "finished:completed")] == 2
    finally:
        raw.close()
