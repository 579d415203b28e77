"""Edges between tasks and workflow runs, on every backend: a waiting task is released or
skipped in the store step that ends its parent, once, whatever happens around it."""

from __future__ import annotations

import asyncio

import pytest

from jobbers.ids import uuid7
from jobbers.models import JSON, Edge, ErrorInfo, NewTask, Outcome, Run, Status
from jobbers.store.base import DuplicateTaskConflict, Report, Store

from ..conftest import StoreFactory

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0
LEASE = 30.0


def new(*after: Edge, run: str | None = None, inputs: str | None = None, **kwargs: JSON) -> NewTask:
    return NewTask(uuid7(), "t.step", kwargs, after=after, run=run, inputs=inputs)


async def run_one(store: Store, task_id: str, outcome: Outcome, at: float = T0) -> None:
    """Claim exactly ``task_id`` (it must be the only ready task) and report ``outcome``."""
    claimed = await store.claim("w", ["default"], 10, LEASE, now=at)
    assert [t.id for t in claimed] == [task_id]
    done = await store.finish("w", [Report(task_id, claimed[0].attempt, outcome)], now=at)
    assert done[0] is not None


async def statuses(store: Store, *tasks: NewTask) -> list[Status]:
    found = await store.statuses([t.id for t in tasks])
    return [found[t.id] for t in tasks]


async def test_diamond_releases_the_join_once_after_both_parents(store: Store) -> None:
    a = new()
    b, c = new(Edge(a.id, "a")), new(Edge(a.id, "a"))
    d = new(Edge(b.id, "b"), Edge(c.id, "c"), inputs="results")
    await store.submit([a, b, c, d], now=T0)
    assert await statuses(store, a, b, c, d) == [Status.SUBMITTED] + [Status.WAITING] * 3
    await run_one(store, a.id, Outcome("completed", 1))
    assert await statuses(store, b, c, d) == [Status.SUBMITTED, Status.SUBMITTED, Status.WAITING]
    claimed = await store.claim("w", ["default"], 10, LEASE, now=T0)
    assert {t.id for t in claimed} == {b.id, c.id}
    first = next(t for t in claimed if t.id == b.id)
    await store.finish("w", [Report(b.id, first.attempt, Outcome("completed", 2))], now=T0)
    assert (await statuses(store, d)) == [Status.WAITING]
    # a duplicate report of b changes nothing
    again = await store.finish("w", [Report(b.id, first.attempt, Outcome("completed", 2))])
    assert again == [None]
    assert (await statuses(store, d)) == [Status.WAITING]
    second = next(t for t in claimed if t.id == c.id)
    await store.finish("w", [Report(c.id, second.attempt, Outcome("completed", 3))], now=T0)
    got = (await store.get([d.id]))[d.id]
    assert got.status == Status.SUBMITTED
    assert got.inputs == "results"
    assert await store.parent_results(d.id) == [("b", 2), ("c", 3)]


async def test_a_failed_parent_skips_its_dependants_and_releases_its_handler(store: Store) -> None:
    a = new()
    b = new(Edge(a.id))
    c = new(Edge(b.id))
    handler = new(Edge(a.id, on="failed"))
    await store.submit([a, b, c, handler], now=T0)
    await run_one(store, a.id, Outcome("failed", error=ErrorInfo("ValueError", "no")))
    assert await statuses(store, a, b, c, handler) == [
        Status.DEAD,
        Status.CANCELLED,
        Status.CANCELLED,
        Status.SUBMITTED,
    ]
    events = [e for e in await store.events(None, 100) if e.task_id == b.id]
    assert events[-1].reason == f"parent {a.id} ended failed"


async def test_a_handler_is_skipped_when_its_node_completes(store: Store) -> None:
    a = new()
    handler = new(Edge(a.id, on="failed"))
    await store.submit([a, handler], now=T0)
    await run_one(store, a.id, Outcome("completed"))
    assert await statuses(store, handler) == [Status.CANCELLED]


async def test_an_edge_to_an_ended_parent_is_settled_at_submission(store: Store) -> None:
    a = new()
    await store.submit([a], now=T0)
    await run_one(store, a.id, Outcome("completed", 5))
    ok, skipped = new(Edge(a.id)), new(Edge(a.id, on="failed"))
    await store.submit([ok, skipped], now=T0)
    assert await statuses(store, ok, skipped) == [Status.SUBMITTED, Status.CANCELLED]


async def test_fan_out_hands_dependants_to_the_collector(store: Store) -> None:
    root = new()
    after = new(Edge(root.id, "root"), inputs="up")
    await store.submit([root, after], now=T0)
    claimed = await store.claim("w", ["default"], 10, LEASE, now=T0)
    kids = [new(i=i) for i in range(3)]
    collector = new(*(Edge(k.id) for k in kids), inputs="parts")
    outcome = Outcome("completed", None, spawn=tuple(kids), collector=collector)
    await store.finish("w", [Report(root.id, claimed[0].attempt, outcome)], now=T0)
    assert await statuses(store, root, after, collector) == [
        Status.COMPLETED,
        Status.WAITING,
        Status.WAITING,
    ]
    started = await store.claim("w", ["default"], 10, LEASE, now=T0)
    assert sorted(t.id for t in started) == sorted(k.id for k in kids)
    for t in started:
        assert (await statuses(store, collector)) == [Status.WAITING]
        report = Report(t.id, t.attempt, Outcome("completed", t.kwargs["i"]))
        await store.finish("w", [report], now=T0)
    assert await store.parent_results(collector.id) == [(None, 0), (None, 1), (None, 2)]
    await run_one(store, collector.id, Outcome("completed", 3))
    assert await statuses(store, after) == [Status.SUBMITTED]
    assert await store.parent_results(after.id) == [("root", 3)]


async def test_a_fan_out_whose_attempt_is_stale_stores_nothing(store: Store) -> None:
    root = new()
    await store.submit([root], now=T0)
    claimed = await store.claim("w", ["default"], 10, LEASE, now=T0)
    kid = new()
    collector = new(Edge(kid.id))
    outcome = Outcome("completed", spawn=(kid,), collector=collector)
    done = await store.finish("other", [Report(root.id, claimed[0].attempt, outcome)], now=T0)
    assert done == [None]
    assert await store.get([kid.id, collector.id]) == {}


async def test_runs_are_stored_listed_and_cancelled_whole(store: Store) -> None:
    run = Run(uuid7(), "nightly", T0, {"nodes": []})
    a = new(run=run.id)
    b = new(Edge(a.id), run=run.id)
    handler = new(Edge(a.id, on="failed"), run=run.id)
    await store.create_run(run, [a, b, handler], now=T0)
    with pytest.raises(DuplicateTaskConflict):
        await store.create_run(Run(uuid7(), "x", T0, {}), [a], now=T0)
    page = await store.runs(10)
    assert [r.id for r in page.runs] == [run.id]
    assert [r.id for r in (await store.runs(10, name="other")).runs] == []
    found = await store.run(run.id)
    assert found is not None
    assert [t.id for t in found[1]] == [a.id, b.id, handler.id]
    result = await store.cancel_run(run.id, "cancelled by request", now=T0 + 1)
    assert result is not None
    assert set(result.cancelled) == {a.id, b.id, handler.id}
    assert await statuses(store, a, b, handler) == [Status.CANCELLED] * 3
    again = await store.run(run.id)
    assert again is not None
    assert again[0].cancelled_at == T0 + 1
    assert await store.claim("w", ["default"], 10, LEASE, now=T0 + 2) == []
    assert await store.cancel_run(uuid7(), "x") is None


async def test_runs_page_newest_first(store: Store) -> None:
    ids = []
    for i in range(5):
        run = Run(uuid7(), "r", T0 + i, {})
        await store.create_run(run, [new(run=run.id)], now=T0)
        ids.append(run.id)
    first = await store.runs(3)
    assert [r.id for r in first.runs] == ids[::-1][:3]
    assert first.cursor is not None
    rest = await store.runs(3, first.cursor)
    assert [r.id for r in rest.runs] == ids[::-1][3:]
    assert rest.cursor is None


async def test_parents_ending_at_once_on_two_connections_release_each_join_once(
    make_store: StoreFactory,
) -> None:
    first, second = make_store(), make_store()
    for _ in range(5):
        pairs = [(new(), new()) for _ in range(20)]
        joins = [new(Edge(a.id), Edge(b.id)) for a, b in pairs]
        await first.submit([t for pair in pairs for t in pair] + joins, now=T0)
        claimed = {t.id: t for t in await first.claim("w", ["default"], 100, LEASE, now=T0)}
        assert len(claimed) == 40

        reports = {t: Report(t, c.attempt, Outcome("completed")) for t, c in claimed.items()}
        ended = await asyncio.gather(
            first.finish("w", [reports[a.id] for a, _ in pairs], now=T0),
            second.finish("w", [reports[b.id] for _, b in pairs], now=T0),
        )
        assert None not in ended[0] + ended[1]
        assert await statuses(first, *joins) == [Status.SUBMITTED] * len(joins)
        wanted = {j.id for j in joins}
        events = await first.events(None, 10_000)
        released = [e.task_id for e in events if e.reason == "released" and e.task_id in wanted]
        assert sorted(released) == sorted(wanted)
        done = await first.claim("w", ["default"], 100, LEASE, now=T0)
        await first.finish("w", [Report(t.id, t.attempt, Outcome("completed")) for t in done])


async def test_an_edge_linked_while_its_parent_ends_is_settled_once(
    make_store: StoreFactory,
) -> None:
    first, second = make_store(), make_store()
    for _ in range(20):
        parent = new()
        await first.submit([parent], now=T0)
        [claimed] = await first.claim("w", ["default"], 10, LEASE, now=T0)
        child = new(Edge(parent.id))
        report = Report(parent.id, claimed.attempt, Outcome("completed"))
        await asyncio.gather(second.submit([child], now=T0), first.finish("w", [report], now=T0))
        assert await statuses(first, child) == [Status.SUBMITTED]
        [started] = await first.claim("w", ["default"], 10, LEASE, now=T0)
        assert started.id == child.id
        await first.finish("w", [Report(child.id, started.attempt, Outcome("completed"))])


async def test_cancelling_a_parent_with_its_waiting_child_ends_the_child_once(
    store: Store,
) -> None:
    parent = new()
    child = new(Edge(parent.id))
    await store.submit([parent, child], now=T0)
    result = await store.cancel([parent.id, child.id], now=T0)
    assert set(result.cancelled) | set(result.not_cancellable) == {parent.id, child.id}
    assert parent.id in result.cancelled
    assert await statuses(store, parent, child) == [Status.CANCELLED] * 2
    ended = [e for e in await store.events(None, 100) if e.task_id == child.id]
    assert [e.status for e in ended] == [Status.WAITING, Status.CANCELLED]


async def test_cancelling_a_run_cancels_a_handler_its_cancel_released(store: Store) -> None:
    run = Run(uuid7(), "chain", T0, {})
    a = new(run=run.id)
    b = new(Edge(a.id), run=run.id)
    on_b = new(Edge(b.id, on="failed"), run=run.id)
    await store.create_run(run, [a, b, on_b], now=T0)
    result = await store.cancel_run(run.id, "stop", now=T0 + 1)
    assert result is not None
    assert sorted(result.cancelled) == sorted([a.id, b.id, on_b.id])
    assert await statuses(store, a, b, on_b) == [Status.CANCELLED] * 3
    assert await store.claim("w", ["default"], 10, LEASE, now=T0 + 2) == []
