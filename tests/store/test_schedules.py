"""The schedules part of the store contract, on every backend: specs and firing state kept apart,
and the compare-and-set that lets exactly one firer move an occurrence on."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from jobbers.schedule import Schedule
from jobbers.store.base import Store
from tests.conftest import StoreFactory

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0


def schedule(schedule_id: str = "nightly", **changes: object) -> Schedule:
    base = Schedule(
        id=schedule_id,
        cron="*/5 * * * * *",
        timezone="Europe/Paris",
        target={"task": "jobbers.examples.add", "kwargs": {"x": 1, "y": 2}},
        created_at=T0,
        updated_at=T0,
        next_fire=T0 + 5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_create_read_update_delete(store: Store) -> None:
    assert await store.schedules() == []
    assert await store.save_schedule(schedule(), create=True)
    assert not await store.save_schedule(schedule(cron="0 * * * *"), create=True)  # id taken
    assert not await store.save_schedule(schedule("other"), create=False)  # unknown
    assert await store.get_schedule("nightly") == schedule()
    assert await store.get_schedule("missing") is None
    assert await store.save_schedule(schedule("a-first", misfire="run_once"), create=True)
    assert [s.id for s in await store.schedules()] == ["a-first", "nightly"]
    changed = schedule(enabled=False, next_fire=None, concurrency="skip", updated_at=T0 + 1)
    assert await store.save_schedule(changed, create=False)
    assert await store.get_schedule("nightly") == changed
    assert await store.delete_schedule("nightly")
    assert not await store.delete_schedule("nightly")
    assert [s.id for s in await store.schedules()] == ["a-first"]


async def test_advance_is_a_compare_and_set_on_the_next_fire_time(store: Store) -> None:
    await store.save_schedule(schedule(), create=True)
    assert not await store.advance_schedule("nightly", T0 + 4, T0 + 10, T0 + 5, ["t1"])
    assert await store.advance_schedule("nightly", T0 + 5, T0 + 10, T0 + 5, ["t1"])
    assert not await store.advance_schedule("nightly", T0 + 5, T0 + 10, T0 + 5, ["t1"])
    found = await store.get_schedule("nightly")
    assert found is not None
    assert (found.next_fire, found.last_fire, found.last_tasks) == (T0 + 10, T0 + 5, ("t1",))
    # a skipped occurrence moves the time on and keeps the history
    assert await store.advance_schedule("nightly", T0 + 10, T0 + 15)
    found = await store.get_schedule("nightly")
    assert found is not None
    assert (found.next_fire, found.last_fire, found.last_tasks) == (T0 + 15, T0 + 5, ("t1",))
    # an update keeps the history and resets the time; the firer's old value no longer matches
    await store.save_schedule(schedule(next_fire=T0 + 60, cron="0 * * * *"), create=False)
    assert not await store.advance_schedule("nightly", T0 + 15, T0 + 20, T0 + 15, ["t2"])
    found = await store.get_schedule("nightly")
    assert found is not None
    assert (found.cron, found.next_fire, found.last_tasks) == ("0 * * * *", T0 + 60, ("t1",))
    # a fraction of a second survives the round trip exactly
    await store.save_schedule(schedule("frac", next_fire=T0 + 0.1), create=True)
    assert await store.advance_schedule("frac", T0 + 0.1, T0 + 0.2, T0 + 0.1, [])
    assert not await store.advance_schedule("missing", T0, T0 + 1)


async def test_of_many_racing_firers_exactly_one_wins(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(4)]
    await stores[0].save_schedule(schedule(), create=True)
    for step in range(10):
        expected, following = T0 + 5 + step, T0 + 6 + step
        wins = await asyncio.gather(
            *(
                s.advance_schedule("nightly", expected, following, expected, [f"t{step}"])
                for s in stores
                for _ in range(3)
            )
        )
        assert sum(wins) == 1
