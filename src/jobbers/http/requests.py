"""The Manager's own HTTP requests, counted per process: by method, route template and status,
with their latency.

Labelled by the route's template (``/tasks/{task_id}``), never the raw path, so a task id never
becomes a series; a path no route matches is ``other``. These are the one thing ``/metrics``
counts in the Manager's memory (each Manager answers for the requests it served, and a restart
starts them again, which Prometheus reads as a counter reset).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from starlette.types import Message, Receive, Scope, Send

#: Upper bounds (seconds) of the request latency histogram.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The label of a request no route matched (unknown paths stay one series).
UNMATCHED = "other"

Key = tuple[str, str, str]


class _Latency:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
                break


class RequestMetrics:
    """Counts kept on the event loop that serves the requests (no lock needed)."""

    def __init__(self) -> None:
        self._seen: dict[Key, _Latency] = {}

    def add(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = _Latency()
        found.add(seconds)

    def families(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        total = CounterMetricFamily(
            "jobbers_http_requests",
            "HTTP requests this Manager answered, by method, route template and status.",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "jobbers_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer's end, by method, route and status.",
            labels=labels,
        )
        for key, seen in sorted(self._seen.items()):
            total.add_metric(list(key), seen.count)
            cumulative, running = [], 0
            for bound, n in zip(LATENCY_BUCKETS, seen.buckets, strict=True):
                running += n
                cumulative.append((repr(bound), running))
            latency.add_metric(list(key), [*cumulative, ("+Inf", seen.count)], sum_value=seen.total)
        yield total
        yield latency


def route_of(scope: Scope, fallback: str | None = None) -> str:
    """The template of the route that answered (set in the scope by the router)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return fallback or UNMATCHED


async def measured(
    metrics: RequestMetrics,
    scope: Scope,
    receive: Receive,
    send: Send,
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
    route: str | None = None,
) -> None:
    """Run ``app`` on the request, then count it; ``route`` names it when no router will (the
    submission fast path)."""
    status = 500
    started = time.perf_counter()

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        seconds = time.perf_counter() - started
        metrics.add(scope.get("method", ""), route_of(scope, route), status, seconds)
