"""Traces with the OpenTelemetry SDK's in-memory exporter: a submission made inside a span
carries its W3C context into the task, and each attempt a real worker runs is a span whose
parent is that span, retries as its siblings."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobbers import AsyncClient, AsyncProducer, tracing
from jobbers.manager import create_app
from jobbers.models import Status
from jobbers.registry import TaskContext, register_task
from jobbers.store.base import Store
from jobbers.worker import Worker, WorkerSettings

from ..worker.support import wait_for, wait_statuses

pytestmark = pytest.mark.anyio

EXPORTER = InMemorySpanExporter()


async def flaky(ctx: TaskContext) -> str:
    """Fails its first attempt, succeeds on the retry."""
    if ctx.attempt == 1:
        raise ConnectionError("first attempt fails")
    return "ok"


register_task(flaky, name="traced.flaky", max_retries=2, base_delay=0.01, backoff="constant")


def inside() -> str:
    """Sync, so it runs in a thread: the span it sees is its attempt's."""
    return f"{trace.get_current_span().get_span_context().span_id:016x}"


register_task(inside, name="traced.inside")


async def sleepy() -> None:
    await asyncio.sleep(60)


register_task(sleepy, name="traced.sleepy")


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """The SDK's provider can be set once per process: every test of the module shares it."""
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(sdk)
    yield
    sdk.shutdown()


@pytest.fixture(autouse=True)
def clear() -> None:
    EXPORTER.clear()


def attempts(task_id: str) -> list[ReadableSpan]:
    spans = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.attributes and s.attributes.get("jobbers.task.id") == task_id
    ]
    return sorted(spans, key=lambda s: int(str(s.attributes and s.attributes["jobbers.attempt"])))


async def run_worker_until(store: Store, task_ids: list[str]) -> None:
    worker = Worker(store, WorkerSettings(concurrency=2, lease=5.0, shutdown_grace=0.0))
    running = asyncio.create_task(worker.run())
    try:
        await wait_statuses(store, task_ids, {Status.COMPLETED}, 15)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 10)


async def test_a_submit_and_its_attempts_are_one_trace_with_a_retry(store: Store) -> None:
    tracer = trace.get_tracer("test")
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        with tracer.start_as_current_span("caller") as caller:
            task = await client.submit("traced.flaky")
    (record,) = (await store.get([task["id"]])).values()
    context = caller.get_span_context()
    assert record.trace is not None
    assert record.trace.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    await run_worker_until(store, [task["id"]])
    first, second = attempts(task["id"])
    for span, number in ((first, 1), (second, 2)):
        assert span.parent is not None
        assert span.parent.span_id == context.span_id  # siblings under the caller's span
        assert span.context.trace_id == context.trace_id
        assert span.kind == SpanKind.CONSUMER
        assert span.attributes is not None
        assert span.attributes["jobbers.attempt"] == number
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["jobbers.outcome"] == "failed"
    assert first.status.status_code == StatusCode.ERROR
    assert first.status.description == "ConnectionError"
    assert second.attributes["jobbers.outcome"] == "completed"
    assert second.status.status_code == StatusCode.OK
    assert first.context.span_id != second.context.span_id


async def test_the_traceparent_header_and_a_bulk_body_carry_context(store: Store) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as api:
        one = (
            await api.post("/tasks", json={"name": "traced.flaky"}, headers={"traceparent": parent})
        ).json()
        bulk = (
            await api.post(
                "/tasks/bulk",
                json={
                    "tasks": [
                        {"name": "traced.flaky"},
                        {"name": "traced.flaky", "traceparent": own},
                    ]
                },
                headers={"traceparent": parent},
            )
        ).json()["tasks"]
        bad = await api.post("/tasks", json={"name": "traced.flaky", "traceparent": "nope"})
        ignored = (
            await api.post("/tasks", json={"name": "traced.flaky"}, headers={"traceparent": "x-y"})
        ).json()
    assert bad.status_code == 422
    ids = [one["id"], bulk[0]["id"], bulk[1]["id"], ignored["id"]]
    records = await store.get(ids)
    assert [records[i].trace for i in ids] == [parent, parent, own, None]
    await run_worker_until(store, ids[:3])
    for task_id, expected in zip(ids[:3], (parent, parent, own), strict=True):
        spans = attempts(task_id)
        assert len(spans) == 2
        for span in spans:
            assert span.parent is not None
            assert f"{span.parent.span_id:016x}" == expected.split("-")[2]
            assert f"{span.context.trace_id:032x}" == expected.split("-")[1]


async def test_an_attempt_stopped_from_outside_ends_its_span(store: Store) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobbers.test") as api:
        task = (
            await api.post(
                "/tasks", json={"name": "traced.sleepy"}, headers={"traceparent": parent}
            )
        ).json()
    worker = Worker(store, WorkerSettings(concurrency=1, lease=5.0, shutdown_grace=0.0))
    running = asyncio.create_task(worker.run())
    try:
        await wait_statuses(store, [task["id"]], {Status.STARTED}, 10)
        await store.cancel([task["id"]])

        async def ended() -> bool:
            return bool(attempts(task["id"]))

        await wait_for(ended, 10, "the cancelled attempt's span to end")
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 10)
    (span,) = attempts(task["id"])
    assert span.attributes is not None
    assert span.attributes["jobbers.outcome"] == "stopped"
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == parent.split("-")[2]


async def test_a_sync_task_runs_inside_its_attempts_span(store: Store) -> None:
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        task = await client.submit("traced.inside")
    await run_worker_until(store, [task["id"]])
    (span,) = attempts(task["id"])
    (record,) = (await store.get([task["id"]])).values()
    assert record.result == f"{span.context.span_id:016x}"


async def test_a_producer_and_a_bulk_submit_carry_the_current_span(store: Store) -> None:
    tracer = trace.get_tracer("test")
    producer = AsyncProducer(store)
    transport = httpx.ASGITransport(app=create_app(store))
    async with AsyncClient("http://jobbers.test", transport=transport) as client:
        with tracer.start_as_current_span("caller") as caller:
            direct = await producer.submit("traced.flaky")
            many = await client.submit_many([{"name": "traced.flaky"}] * 2)
    context = caller.get_span_context()
    ids = [direct["id"], *(t["id"] for t in many)]
    records = await store.get(ids)
    for task_id in ids:
        trace_id, span_id = records[task_id].trace.split("-")[1:3]  # type: ignore[union-attr]
        assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert direct["traceparent"] == records[direct["id"]].trace


def test_no_span_no_traceparent() -> None:
    assert tracing.current_traceparent() is None
    assert tracing.valid("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01") is None
    assert tracing.valid(" 00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01") == (
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )


def test_without_opentelemetry_nothing_is_traced_and_nothing_fails() -> None:
    """The extra is optional: with the package missing, the module, the worker and the clients
    load and trace nothing. (The Manager's FastAPI requires the API package itself.)"""
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from jobbers import tracing\n"
        "from jobbers.models import RetryPolicy, Status, TaskRecord\n"
        "assert not tracing.available()\n"
        "assert tracing.current_traceparent() is None and tracing.headers() == {}\n"
        "r = TaskRecord('i', 'n', 'q', {}, Status.STARTED, 0, RetryPolicy(), 0.0, 0.0,"
        " trace='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')\n"
        "with tracing.attempt_span(r, 'w') as span:\n"
        "    tracing.end_attempt(span, 'failed', 'E')\n"
        "assert span is None\n"
        "import jobbers.worker, jobbers.client\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
