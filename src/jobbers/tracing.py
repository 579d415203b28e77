"""W3C trace context across a task's life, through OpenTelemetry when it is installed.

A submission keeps its caller's ``traceparent`` (the HTTP header, or the Python client's current
span) in the task record; each attempt a worker runs is then a span whose parent is that
context, so retries show as sibling spans under the submit. The OpenTelemetry API is an optional
dependency (``jobbers[otel]``): without it nothing is traced and nothing here fails, and with
it but no SDK configured its spans are the API's no-op ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobbers.models import TaskRecord

#: version-traceid-spanid-flags, lowercase hex; all-zero ids are invalid (W3C Trace Context).
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
TRACER = "jobbers"

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _PROPAGATOR: Any = TraceContextTextMapPropagator()
except ImportError:  # the otel extra is not installed
    _PROPAGATOR = None


def available() -> bool:
    return _PROPAGATOR is not None


def valid(traceparent: str | None) -> str | None:
    """The header's value when it is a well-formed traceparent, else None: a bad one is
    ignored, as the W3C spec asks, rather than refusing the submission."""
    if traceparent is None:
        return None
    value = traceparent.strip().lower()
    return value if TRACEPARENT.match(value) else None


def current_traceparent() -> str | None:
    """The caller's current span as a traceparent (None without OpenTelemetry or a span)."""
    if _PROPAGATOR is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return valid(carrier.get("traceparent"))


def headers() -> dict[str, str]:
    """Headers that carry the current span to the Manager (none when there is none)."""
    found = current_traceparent()
    return {"traceparent": found} if found else {}


def from_headers(headers: Mapping[str, str]) -> str | None:
    return valid(headers.get("traceparent"))


@contextmanager
def attempt_span(record: TaskRecord, worker_id: str) -> Iterator[Any]:
    """One attempt as a span, child of the context the task was submitted in (a root span
    when it was submitted outside any). Yields the span (None without OpenTelemetry); the
    caller records the outcome with :func:`end_attempt`."""
    if _PROPAGATOR is None:
        yield None
        return
    parent = _PROPAGATOR.extract({"traceparent": record.trace}) if record.trace else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        tracer = trace.get_tracer(TRACER)
        with tracer.start_as_current_span(
            f"jobbers.attempt {record.name}",
            kind=SpanKind.CONSUMER,
            attributes={
                "jobbers.task.id": record.id,
                "jobbers.task.name": record.name,
                "jobbers.task.queue": record.queue,
                "jobbers.attempt": record.attempt,
                "jobbers.worker": worker_id,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException:
                # Stopped from outside (cancelled, lease lost, shutdown): the store records
                # what became of the attempt; the span says only that it did not report.
                span.set_attribute("jobbers.outcome", "stopped")
                raise
    finally:
        if token is not None:
            otel_context.detach(token)


def end_attempt(span: Any, kind: str, error_type: str | None = None) -> None:
    """The outcome on the attempt's span: an error status for anything but success."""
    if span is None:
        return
    span.set_attribute("jobbers.outcome", kind)
    if kind == "completed":
        span.set_status(Status(StatusCode.OK))
    elif kind in ("failed", "timeout"):
        span.set_status(Status(StatusCode.ERROR, error_type or kind))
