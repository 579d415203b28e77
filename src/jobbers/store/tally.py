"""Turning the sums a backend keeps into :class:`TaskCounts` fields, the same way for every
backend: finishes are kept per second and per minute, histograms per bucket (not cumulative)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from jobbers.models import Status, WorkerInfo
from jobbers.store.base import DURATION_BUCKETS, Durations

#: The slot past the last bound (counted in ``Durations.count`` only).
OVER = len(DURATION_BUCKETS)
#: Seconds summed in one row of the per-minute finish sums.
MINUTE = 60
#: Status by its text: a dict lookup, far cheaper than ``Status(text)`` once per row read.
STATUS = {s.value: s for s in Status}


def durations(slots: Mapping[int, int], total: float) -> Durations:
    """``slots[i]``: values in bucket ``i`` alone (``OVER`` = above the last bound)."""
    below, running = [], 0
    for i in range(len(DURATION_BUCKETS)):
        running += slots.get(i, 0)
        below.append(running)
    return Durations(tuple(below), sum(slots.values()), total)


#: The kinds of monotonic timing kept per (queue, name) beside the totals.
TIMINGS = ("wait", "run")


def slot_of(seconds: float) -> int:
    """The histogram slot of a duration: the first bound it is within, else :data:`OVER`."""
    for i, bound in enumerate(DURATION_BUCKETS):
        if seconds <= bound:
            return i
    return OVER


def timing_rows(
    kind: str, queue: str, name: str, seconds: float
) -> list[tuple[str, str, str, float]]:
    """The total rows one timing adds: one to its slot (``kind:slot``), seconds to ``kind:sum``."""
    v = max(0.0, seconds)
    return [(queue, name, f"{kind}:{slot_of(v)}", 1), (queue, name, f"{kind}:sum", v)]


def split_totals(
    rows: Iterable[tuple[str, str, str, float]],
) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], Durations]]:
    """Totals as a store keeps them (timing slots and sums among them) as counters and, per
    ``(kind, queue, name)``, histograms."""
    counters: dict[tuple[str, str, str], int] = {}
    slots: dict[tuple[str, str, str], dict[int, int]] = {}
    sums: dict[tuple[str, str, str], float] = {}
    for queue, name, key, n in rows:
        kind, _, part = key.partition(":")
        if kind in TIMINGS:
            group = (kind, queue, name)
            if part == "sum":
                sums[group] = float(n)
            else:
                slots.setdefault(group, {})[int(part)] = int(float(n))
        else:
            counters[(queue, name, key)] = int(float(n))
    timings = {g: durations(s, sums.get(g, 0.0)) for g, s in slots.items()}
    return counters, timings


def by_minute(since: float, bucket: float) -> bool:
    """True when the per-minute sums give the same buckets as the per-second ones: ``since``
    starts a minute and each bucket holds whole minutes, so every minute falls in one bucket
    (the one its seconds fall in). An hour's window then reads 60 rows per status, not 3,600."""
    return since % MINUTE == 0 and bucket >= MINUTE and bucket % MINUTE == 0


def finish_buckets(
    seconds: Iterable[tuple[int, str, int]], since: float, bucket: float
) -> dict[tuple[float, Status], int]:
    """``(second, status, tasks)`` rows into ``bucket``-second buckets from ``since``; the
    second holding ``since`` counts (finishes are kept to the second). Rows of per-minute sums
    (the minute's first second) give the same buckets when :func:`by_minute` holds."""
    out: dict[tuple[float, Status], int] = {}
    for second, status, n in seconds:
        if second + 1 <= since or n <= 0:
            continue
        key = (since + max(0, math.floor((second - since) / bucket)) * bucket, STATUS[status])
        out[key] = out.get(key, 0) + n
    return out


def unrunnable(
    waiting: Mapping[str, int], queue: str, workers: Iterable[WorkerInfo]
) -> dict[str, int]:
    """Of ``waiting`` (task name -> tasks waiting in ``queue``), those no registered worker
    serving the queue can run. A worker that did not say what it runs (an older one) may run
    anything, so with one serving the queue nothing is reported."""
    serving = [w for w in workers if queue in w.queues]
    if any(not w.tasks for w in serving):
        return {}
    known = {name for w in serving for name in w.tasks}
    return {name: n for name, n in sorted(waiting.items()) if n and name not in known}
