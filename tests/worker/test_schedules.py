"""Schedules fired by firers: in this process with chosen clocks (the decisions), then by real
worker processes (exactly once with two workers, misfires after downtime, skip while running)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jobbers.catalog import TaskCatalog
from jobbers.firing import Firer, occurrence_id
from jobbers.models import Outcome, Status
from jobbers.schedule import Concurrency, Misfire, Schedule
from jobbers.store.base import Report, Store
from tests.conftest import StoreFactory

from .conftest import Spawn
from .support import events, wait_for

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0  # a whole minute


def every_second(
    log: Path,
    *,
    schedule_id: str = "every",
    misfire: Misfire = "skip",
    grace: float = 60.0,
    concurrency: Concurrency = "always",
    seconds: float = 0.0,
    start: float | None = None,
) -> Schedule:
    target = {"task": "wt.mark", "kwargs": {"log": str(log), "seconds": seconds}}
    schedule = Schedule(
        schedule_id,
        "* * * * * *",
        "UTC",
        target,
        misfire=misfire,
        misfire_grace=grace,
        concurrency=concurrency,
    )
    return schedule.armed(time.time() if start is None else start)


def occurrence(task_id: str) -> float:
    return int(task_id.rsplit(":", 1)[1]) / 1000


# -- decisions, with the clock given ---------------------------------------------------------


async def test_a_due_occurrence_fires_once_with_its_own_id(store: Store, log: Path) -> None:
    schedule = every_second(log, start=T0)
    assert schedule.next_fire == T0 + 1
    await store.save_schedule(schedule, create=True)
    firer = Firer(store, TaskCatalog(store))
    assert await firer.fire_due(T0 + 0.5) == []
    (fired,) = await firer.fire_due(T0 + 1.2)
    assert (fired.action, fired.tasks) == ("fired", (occurrence_id(schedule, T0 + 1),))
    assert fired.tasks == ("sched:every:1800000001000",)
    record = (await store.get(fired.tasks))[fired.tasks[0]]
    assert (record.name, record.kwargs) == ("wt.mark", {"log": str(log), "seconds": 0.0})
    found = await store.get_schedule("every")
    assert found is not None
    assert (found.next_fire, found.last_fire, found.last_tasks) == (T0 + 2, T0 + 1, fired.tasks)


async def test_racing_firers_fire_each_occurrence_once(make_store: StoreFactory, log: Path) -> None:
    stores = [make_store() for _ in range(3)]
    await stores[0].save_schedule(every_second(log, start=T0), create=True)
    firers = [Firer(s, TaskCatalog(s)) for s in stores for _ in range(2)]
    actions: collections.Counter[tuple[float, str]] = collections.Counter()
    for step in range(1, 6):
        passes = await asyncio.gather(*(f.fire_due(T0 + step + 0.1) for f in firers))
        for done in passes:
            actions.update((f.at, f.action) for f in done)
    for step in range(1, 6):
        assert actions[(T0 + step, "fired")] == 1
        assert actions[(T0 + step, "fired")] + actions[(T0 + step, "lost")] >= 1


@pytest.mark.parametrize("policy", ["skip", "run_once"])
async def test_a_misfire_skips_or_runs_once(store: Store, log: Path, policy: Misfire) -> None:
    await store.save_schedule(every_second(log, misfire=policy, grace=1.5, start=T0), create=True)
    firer = Firer(store, TaskCatalog(store))
    # The firers were down from T0 + 1 to T0 + 10: occurrences T0 + 1 .. T0 + 8 are too late.
    done = await firer.fire_due(T0 + 10.0)
    expected = [] if policy == "skip" else [occurrence_id(every_second(log), T0 + 1)]
    assert [f.action for f in done] == ["skipped_misfire" if policy == "skip" else "caught_up"]
    assert list(done[0].tasks) == expected
    found = await store.get_schedule("every")
    assert found is not None
    assert found.next_fire == T0 + 9  # the first occurrence within the grace fires as itself
    (again,) = await firer.fire_due(T0 + 10.0)
    assert (again.at, again.action) == (T0 + 9, "fired")


async def test_skip_while_running_waits_for_the_previous_run(store: Store, log: Path) -> None:
    await store.save_schedule(every_second(log, concurrency="skip", start=T0), create=True)
    firer = Firer(store, TaskCatalog(store))
    (first,) = await firer.fire_due(T0 + 1)
    assert first.action == "fired"
    (second,) = await firer.fire_due(T0 + 2)
    assert second.action == "skipped_running"  # the first is still submitted
    await store.cancel(list(first.tasks))
    (third,) = await firer.fire_due(T0 + 3)
    assert third.action == "fired"


async def test_skip_while_running_judges_a_workflow_on_the_whole_run(
    store: Store, log: Path
) -> None:
    """The root finished and its child has not: the run is running, so the next occurrence is
    skipped; once the child ends, the one after fires a new run."""
    mark = {"task": "wt.mark", "kwargs": {"log": str(log)}}
    graph = {
        "name": "pair",
        "nodes": [{"id": "root", **mark}, {"id": "child", **mark}],
        "edges": [{"from": "root", "to": "child"}],
    }
    schedule = Schedule("flow", "* * * * * *", "UTC", {"workflow": graph}, concurrency="skip")
    await store.save_schedule(schedule.armed(T0), create=True)
    firer = Firer(store, TaskCatalog(store))
    (first,) = await firer.fire_due(T0 + 1)
    assert (first.action, first.tasks) == ("fired", ("sched:flow:1800000001000",))
    run_id = first.tasks[0]
    for node in ("root", "child"):
        (claimed,) = await store.claim("w", ["default"], 5, 60.0, now=T0 + 1.5)
        assert claimed.id == f"{run_id}:{node}"
        if node == "child":
            break
        await store.finish("w", [Report(claimed.id, 1, Outcome("completed"))], now=T0 + 1.6)
        (second,) = await firer.fire_due(T0 + 2)
        assert second.action == "skipped_running"
    await store.finish("w", [Report(f"{run_id}:child", 1, Outcome("completed"))], now=T0 + 3.5)
    (third,) = await firer.fire_due(T0 + 3.6)
    assert (third.action, third.tasks) == ("fired", ("sched:flow:1800000003000",))
    found = await store.run(run_id)
    assert found is not None
    assert {t.status for t in found[1]} == {Status.COMPLETED}


async def test_a_disabled_schedule_does_not_fire(store: Store, log: Path) -> None:
    schedule = every_second(log, start=T0)
    await store.save_schedule(schedule, create=True)
    await store.save_schedule(replace(schedule, enabled=False).armed(T0), create=False)
    assert await Firer(store, TaskCatalog(store)).fire_due(T0 + 5) == []


# -- real worker processes -------------------------------------------------------------------


def ran(log: Path) -> collections.Counter[str]:
    """How many times each scheduled task ran, by task id."""
    return collections.Counter(e["id"] for e in events(log, "ran"))


async def schedule_state(store: Store, schedule_id: str = "every") -> Schedule:
    found = await store.get_schedule(schedule_id)
    assert found is not None
    return found


@pytest.mark.slow
async def test_two_workers_fire_each_occurrence_exactly_once(
    store: Store, spawn: Spawn, log: Path
) -> None:
    workers = [spawn(), spawn()]
    for worker in workers:
        await worker.registered(store)
    schedule = every_second(log)
    first = schedule.next_fire
    assert first is not None
    await store.save_schedule(schedule, create=True)

    async def ten_seconds_fired() -> bool:
        return ((await schedule_state(store)).next_fire or 0.0) > first + 10

    await wait_for(ten_seconds_fired, 25, "ten seconds of occurrences to fire", step=0.1)
    await store.save_schedule(replace(schedule, enabled=False, next_fire=None), create=False)
    last = (await schedule_state(store)).last_fire
    assert last is not None
    expected = [occurrence_id(schedule, first + i) for i in range(round(last - first) + 1)]
    assert len(expected) >= 10

    async def all_ran() -> bool:
        return set(expected) <= set(ran(log))

    await wait_for(all_ran, 15, "every fired occurrence to run")
    counts = ran(log)
    assert sorted(counts) == expected  # every occurrence, nothing else
    assert set(counts.values()) == {1}  # each ran once
    # both workers fired (each took part in the race), yet no occurrence ran twice
    records = await store.get(expected)
    assert all(r.status is Status.COMPLETED for r in records.values())


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["skip", "run_once"])
async def test_after_five_seconds_of_downtime_the_misfire_policy_decides(
    store: Store, spawn: Spawn, log: Path, policy: Misfire
) -> None:
    grace = 1.5
    workers = [spawn(), spawn()]
    for worker in workers:
        await worker.registered(store)
    schedule = every_second(log, misfire=policy, grace=grace)
    await store.save_schedule(schedule, create=True)

    async def two_fired() -> bool:
        return len(ran(log)) >= 2

    await wait_for(two_fired, 20, "two occurrences to run")
    for worker in workers:
        worker.signal(signal.SIGKILL)
        worker.wait(10)
    missed = (await schedule_state(store)).next_fire  # the first occurrence nobody fired
    assert missed is not None
    before = set(ran(log))
    await asyncio.sleep(5.0)  # the downtime itself
    restarted_at = time.time()
    workers = [spawn(), spawn()]
    for worker in workers:
        await worker.registered(store)

    async def two_more() -> bool:
        return len(set(ran(log)) - before) >= 2

    await wait_for(two_more, 20, "two occurrences after the restart")
    after = sorted(set(ran(log)) - before, key=occurrence)
    too_late = [i for i in after if occurrence(i) <= restarted_at - grace]
    assert missed <= restarted_at - grace - 2  # occurrences were missed, beyond the grace
    if policy == "skip":
        assert too_late == []
    else:
        assert too_late == [occurrence_id(schedule, missed)]  # one run for all of them
    assert set(ran(log).values()) == {1}


@pytest.mark.slow
async def test_skip_while_running_holds_until_the_previous_run_ends(
    store: Store, spawn: Spawn, log: Path
) -> None:
    workers = [spawn(), spawn()]
    for worker in workers:
        await worker.registered(store)
    await store.save_schedule(every_second(log, concurrency="skip", seconds=2.5), create=True)

    async def three_fired() -> bool:
        return len((await schedule_state(store)).last_tasks) > 0 and len(ran(log)) >= 3

    await wait_for(three_fired, 30, "three runs of the schedule")
    ids = sorted(ran(log), key=occurrence)
    records = await store.get(ids)
    runs = [records[i] for i in ids]
    for previous, following in itertools.pairwise(runs):
        assert previous.finished_at is not None
        # each run was submitted only once the one before it had ended
        assert following.submitted_at >= previous.finished_at
        assert occurrence(following.id) - occurrence(previous.id) >= 2


async def test_a_schedule_that_cannot_fire_does_not_hold_up_the_others(
    store: Store, log: Path
) -> None:
    # A kind this version does not know (stored by a newer one), and a task that went away.
    odd = replace(every_second(log, schedule_id="a-odd", start=T0), target={"pipeline": {}})
    gone = replace(every_second(log, schedule_id="b-gone", start=T0), target={"task": "no.more"})
    await store.save_schedule(odd, create=True)
    await store.save_schedule(gone, create=True)
    await store.save_schedule(every_second(log, start=T0), create=True)
    done = await Firer(store, TaskCatalog(store)).fire_due(T0 + 1)
    assert [(f.schedule, f.action) for f in done] == [
        ("b-gone", "skipped_invalid"),
        ("every", "fired"),
    ]
    moved = await store.get_schedule("b-gone")
    assert moved is not None
    assert moved.next_fire == T0 + 2  # skipped, not stuck
