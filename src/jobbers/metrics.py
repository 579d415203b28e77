"""Prometheus metrics computed from the store at each scrape.

Nothing about tasks is counted in the Manager's memory, so any number of Managers answer the
same numbers and a restart loses nothing. The ``_total`` series are the store's monotonic totals
(moved in the same store step as what they count): pruning finished tasks leaves them, so they
never fall. Gauges such as ``jobbers_tasks`` cover the tasks the store keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from jobbers import effects
from jobbers.models import QueueStats, Status, WorkerInfo
from jobbers.store.base import DURATION_BUCKETS, Durations, Store, TaskCounts

#: A worker that has not renewed for this long is not counted as alive.
ALIVE_WITHIN = 60.0


#: At most this many ``(queue, name)`` series per timing histogram: those with the most
#: observations keep their task name, the rest are summed per queue under :data:`OTHER_NAME`.
MAX_NAMED = 200
OTHER_NAME = "_other"


def _merged(a: Durations, b: Durations) -> Durations:
    return Durations(
        tuple(x + y for x, y in zip(a.buckets, b.buckets, strict=True)),
        a.count + b.count,
        a.total + b.total,
    )


def bounded(series: dict[tuple[str, str], Durations]) -> dict[tuple[str, str], Durations]:
    """At most :data:`MAX_NAMED` series (plus one ``_other`` per queue past it)."""
    if len(series) <= MAX_NAMED:
        return series
    ranked = sorted(series.items(), key=lambda kv: (-kv[1].count, kv[0]))
    out = dict(ranked[:MAX_NAMED])
    for (queue, _), d in ranked[MAX_NAMED:]:
        key = (queue, OTHER_NAME)
        out[key] = _merged(out[key], d) if key in out else d
    return out


def _histogram(
    name: str, doc: str, series: dict[tuple[str, str], Durations]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["queue", "name"])
    for (queue, task), d in sorted(bounded(series).items()):
        buckets = [(repr(bound), n) for bound, n in zip(DURATION_BUCKETS, d.buckets, strict=True)]
        family.add_metric([queue, task], [*buckets, ("+Inf", d.count)], sum_value=d.total)
    return family


def families(
    counts: TaskCounts, queues: list[QueueStats], workers: list[WorkerInfo], now: float
) -> Iterator[Metric]:
    kept = GaugeMetricFamily(
        "jobbers_tasks",
        "Tasks the store keeps, by queue, name and status.",
        labels=["queue", "name", "status"],
    )
    dead: dict[str, int] = {}
    for (queue, name, status), n in sorted(counts.tasks.items()):
        kept.add_metric([queue, name, status.value], n)
        if status == Status.DEAD:
            dead[queue] = dead.get(queue, 0) + n
    yield kept
    yield from _totals(counts.totals)
    dead_letters = GaugeMetricFamily(
        "jobbers_dead_letters", "Tasks in the dead letter queue.", labels=["queue"]
    )
    for queue, n in sorted(dead.items()):
        dead_letters.add_metric([queue], n)
    yield dead_letters
    yield from _queue_families(counts, queues, now)
    by_kind: dict[str, dict[tuple[str, str], Durations]] = {"wait": {}, "run": {}}
    for (kind, queue, name), d in counts.timings.items():
        by_kind[kind][(queue, name)] = d
    yield _histogram(
        "jobbers_task_queue_wait_seconds",
        "Seconds from ready to started, each start, by queue and task name.",
        by_kind["wait"],
    )
    yield _histogram(
        "jobbers_task_run_seconds",
        "Seconds each attempt ran, from its start to its end whatever the outcome (completed,"
        " failed, retried, lost, cancelled, handed back), by queue and task name.",
        by_kind["run"],
    )
    alive = GaugeMetricFamily("jobbers_workers_alive", f"Workers seen within {ALIVE_WITHIN:g} s.")
    alive.add_metric([], sum(1 for w in workers if now - w.last_seen <= ALIVE_WITHIN))
    yield alive
    yield from _workers(workers)


#: Each monotonic total's counter family (the name without ``_total``) and help text.
COUNTERS: dict[effects.Total, tuple[str, str]] = {
    effects.Total.SUBMITTED: ("jobbers_tasks_submitted", "Tasks created, by queue and name."),
    effects.Total.STARTED: ("jobbers_tasks_started", "Attempts started, by queue and name."),
    effects.Total.FINISHED: (
        "jobbers_tasks_finished",
        "Attempts or tasks that ended (completed, failed, cancelled), by queue, name and status;"
        " a failure later dead-lettered counts as failed.",
    ),
    effects.Total.RETRIED: (
        "jobbers_task_retries",
        "Failed attempts scheduled to run again, by queue and name.",
    ),
    effects.Total.LEASE_LOST: (
        "jobbers_task_leases_lost",
        "Attempts whose worker stopped renewing their lease, by queue and name.",
    ),
    effects.Total.STALLED: (
        "jobbers_tasks_stalled",
        "Attempts stopped for missing heartbeats, by queue and name.",
    ),
    effects.Total.DEAD_LETTERED: (
        "jobbers_tasks_dead_lettered",
        "Tasks moved to the dead letter queue, by queue and name.",
    ),
    effects.Total.RESUBMITTED: (
        "jobbers_tasks_resubmitted",
        "Dead tasks resubmitted, by queue and name.",
    ),
}


def _totals(totals: dict[tuple[str, str, str], int]) -> Iterator[Metric]:
    """One counter family per total, every family present even before its first count (a
    finish status shows once it happened)."""
    families: dict[str, CounterMetricFamily] = {}
    for total, (metric, text) in COUNTERS.items():
        labels = (
            ["queue", "name", "status"] if total is effects.Total.FINISHED else ["queue", "name"]
        )
        families[total.value] = CounterMetricFamily(metric, text, labels=labels)
    # Every group's counters start at 0, so rate() sees the first count of each.
    filled = dict.fromkeys(
        ((q, name, key) for q, name, _ in totals for key in effects.total_keys()), 0
    )
    filled.update(totals)
    for (queue, name, key), n in sorted(filled.items()):
        kind, _, status = key.partition(":")
        family = families.get(kind)
        if family is not None:
            family.add_metric([queue, name, *([status] if status else [])], n)
    yield from families.values()


def _workers(workers: list[WorkerInfo]) -> Iterator[Metric]:
    """Per worker the store lists (stale ones drop out of the list, which bounds the series)."""
    gauges: list[tuple[str, str, Callable[[WorkerInfo], float]]] = [
        ("jobbers_worker_slots", "Attempts the worker runs at once.", lambda w: w.slots),
        ("jobbers_worker_running", "Attempts the worker runs now.", lambda w: w.running),
        (
            "jobbers_worker_last_seen_timestamp_seconds",
            "When the worker last renewed (Unix time).",
            lambda w: w.last_seen,
        ),
    ]
    for metric, text, value in gauges:
        family = GaugeMetricFamily(metric, text, labels=["worker", "hostname"])
        for w in sorted(workers, key=lambda w: w.id):
            family.add_metric([w.id, w.hostname], value(w))
        yield family


def _queue_families(counts: TaskCounts, queues: list[QueueStats], now: float) -> Iterable[Metric]:
    def oldest(q: QueueStats) -> float:
        ready = counts.oldest_ready.get(q.config.name)
        return 0.0 if ready is None else max(0.0, now - ready)

    gauges: list[tuple[str, str, Callable[[QueueStats], float]]] = [
        ("jobbers_queue_depth", "Tasks ready to run, by queue.", lambda q: q.depth),
        (
            "jobbers_queue_scheduled",
            "Tasks waiting for their time (delay, retry backoff).",
            lambda q: q.scheduled,
        ),
        ("jobbers_queue_running", "Tasks running, by queue.", lambda q: q.running),
        ("jobbers_queue_paused", "1 while the queue is paused.", lambda q: int(q.config.paused)),
        (
            "jobbers_queue_oldest_ready_age_seconds",
            "How long the longest-waiting ready task has waited, by queue (0 when none waits).",
            oldest,
        ),
    ]
    for metric, text, value in gauges:
        family = GaugeMetricFamily(metric, text, labels=["queue"])
        for q in queues:
            family.add_metric([q.config.name], value(q))
        yield family
    unrunnable = GaugeMetricFamily(
        "jobbers_queue_unrunnable_tasks",
        "Waiting tasks that no live worker serving the queue has the code for, by queue and task"
        " name (they wait for a worker that has it).",
        labels=["queue", "name"],
    )
    for q in queues:
        for name, count in q.unrunnable.items():
            unrunnable.add_metric([q.config.name, name], count)
    yield unrunnable


class _Snapshot:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


async def exposition(store: Store, extra: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text format for the store as it is now, then ``extra`` families."""
    now = time.time()
    counts = await store.counts(since=now)
    metrics = list(families(counts, await store.queue_stats(), await store.workers(), now))
    metrics.extend(extra)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    return generate_latest(registry)
