"""A :class:`Producer` and a :class:`Client` answer the same call with the same shape and raise the
same error for the same refusal: mypy checks the types (``assert_type`` on both), the tests check
the answers and the errors against a real Manager and the real store behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, Protocol, assert_type

import pytest

from jobbers import APIError, AsyncClient, AsyncProducer, Client, Producer
from jobbers.handle import Source
from tests.cli.conftest import DevServer, start_dev

#: Fields that differ between two submissions of the same task (ids and times).
_VARYING = {"id", "submitted_at", "updated_at"}


class Shared(Source, Protocol):
    """What both blocking twins offer (a handle's calls and these), one answer type per call."""

    def submit_many(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def statuses(self, task_ids: list[str]) -> dict[str, str]: ...

    def cancel_many(self, task_ids: list[str]) -> dict[str, Any]: ...


def _types_match(client: Client, producer: Producer) -> tuple[Shared, Shared]:
    """Never run for its answers: mypy checks every shared method's type on both twins."""
    assert_type(client.submit("add"), dict[str, Any])
    assert_type(producer.submit("add"), dict[str, Any])
    assert_type(client.submit_many([]), list[dict[str, Any]])
    assert_type(producer.submit_many([]), list[dict[str, Any]])
    assert_type(client.get("x"), dict[str, Any])
    assert_type(producer.get("x"), dict[str, Any])
    assert_type(client.statuses(["x"]), dict[str, str])
    assert_type(producer.statuses(["x"]), dict[str, str])
    assert_type(client.wait("x"), dict[str, Any])
    assert_type(producer.wait("x"), dict[str, Any])
    assert_type(client.cancel("x"), dict[str, Any])
    assert_type(producer.cancel("x"), dict[str, Any])
    assert_type(client.cancel_many(["x"]), dict[str, Any])
    assert_type(producer.cancel_many(["x"]), dict[str, Any])
    return client, producer


async def _async_types_match(client: AsyncClient, producer: AsyncProducer) -> None:
    """The asyncio twins, likewise."""
    assert_type(await client.submit("add"), dict[str, Any])
    assert_type(await producer.submit("add"), dict[str, Any])
    assert_type(await client.submit_many([]), list[dict[str, Any]])
    assert_type(await producer.submit_many([]), list[dict[str, Any]])
    assert_type(await client.get("x"), dict[str, Any])
    assert_type(await producer.get("x"), dict[str, Any])
    assert_type(await client.statuses(["x"]), dict[str, str])
    assert_type(await producer.statuses(["x"]), dict[str, str])
    assert_type(await client.wait("x"), dict[str, Any])
    assert_type(await producer.wait("x"), dict[str, Any])
    assert_type(await client.cancel("x"), dict[str, Any])
    assert_type(await producer.cancel("x"), dict[str, Any])
    assert_type(await client.cancel_many(["x"]), dict[str, Any])
    assert_type(await producer.cancel_many(["x"]), dict[str, Any])


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A Manager without a worker, so that submitted tasks stay where the test puts them."""
    folder = tmp_path_factory.mktemp("parity")
    store = f"sqlite:///{folder / 'parity.db'}"
    server = start_dev(folder, "--store", store, "--tasks", "jobbers.examples", command="manager")
    server.store = store
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def twins(manager: DevServer) -> Iterator[tuple[Shared, Shared]]:
    import jobbers.examples  # noqa: F401  (the producer's process knows the tasks too)

    with Client(manager.url) as client, Producer(manager.store) as producer:
        yield client, producer


def _outcome(call: Callable[[Shared], Any], source: Shared) -> Any:
    """What a call gave: its answer with ids and times left out, or its error's class, status
    and detail."""
    try:
        answer = call(source)
    except Exception as exc:
        return type(exc), getattr(exc, "status_code", None), getattr(exc, "detail", str(exc))
    return _steady(answer)


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in _VARYING}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def same(twins: tuple[Shared, Shared], call: Callable[[Shared], Any]) -> Any:
    client, producer = twins
    by_client, by_producer = _outcome(call, client), _outcome(call, producer)
    assert by_client == by_producer
    return by_client


ADD = {"x": 1, "y": 2}
REFUSED_SUBMISSIONS: dict[str, tuple[Callable[[Shared], Any], int]] = {
    "unknown name": (lambda s: s.submit("no.such.task"), 404),
    "kwargs that do not fit": (lambda s: s.submit("add", {"x": 1}), 422),
    "an option of the wrong type": (lambda s: s.submit("add", ADD, priority="high"), 422),
    "an unknown option": (lambda s: s.submit("add", ADD, max_retry=2), 422),
    "delay and run_at": (lambda s: s.submit("add", ADD, delay=1, run_at=5), 422),
    "a bad entry in bulk": (lambda s: s.submit_many([{"name": "add", "kwargs": {}}]), 422),
    "an id twice in bulk": (
        lambda s: s.submit_many(
            [
                {"name": "add", "kwargs": ADD, "id": "twice"},
                {"name": "add", "kwargs": {"x": 9, "y": 9}, "id": "twice"},
            ]
        ),
        409,
    ),
    "an unknown id read": (lambda s: s.get("ghost"), 404),
    "an unknown id awaited": (lambda s: s.wait("ghost", timeout=0.1), 404),
    "an unknown id cancelled": (lambda s: s.cancel("ghost"), 404),
}


@pytest.mark.parametrize("case", REFUSED_SUBMISSIONS)
def test_the_same_refusal_raises_the_same_error(twins: tuple[Shared, Shared], case: str) -> None:
    call, status = REFUSED_SUBMISSIONS[case]
    kind, code, _ = same(twins, call)
    assert (kind, code) == (APIError, status)


def test_submissions_answer_the_same_task(twins: tuple[Shared, Shared]) -> None:
    one = same(twins, lambda s: s.submit("add", ADD, queue="parity", priority=3, max_retries=2))
    assert (one["status"], one["queue"], one["policy"]["max_retries"]) == ("submitted", "parity", 2)
    many = same(twins, lambda s: s.submit_many([{"name": "add", "kwargs": ADD}] * 2))
    assert [t["kwargs"] for t in many] == [ADD, ADD]


def test_a_conflicting_id_is_refused_alike(twins: tuple[Shared, Shared]) -> None:
    client, producer = twins
    client.submit("add", ADD, id="taken-c")
    producer.submit("add", ADD, id="taken-p")
    for source, taken in ((client, "taken-p"), (producer, "taken-c")):
        with pytest.raises(APIError, match="another payload") as refused:
            source.submit("add", {"x": 5, "y": 5}, id=taken)
        assert refused.value.status_code == 409
        assert source.submit("add", ADD, id=taken)["id"] == taken  # the same payload: no error


def test_reads_waits_and_cancels_answer_alike(twins: tuple[Shared, Shared]) -> None:
    client, producer = twins
    ids = [client.submit("add", ADD)["id"], producer.submit("add", ADD)["id"]]
    for task_id in ids:
        assert _steady(client.get(task_id)) == _steady(producer.get(task_id))
        assert "progress" in producer.get(task_id)
        for source in twins:
            with pytest.raises(TimeoutError, match="still submitted"):
                source.wait(task_id, timeout=0.05)
    assert client.statuses(ids) == producer.statuses(ids) == dict.fromkeys(ids, "submitted")
    assert client.cancel(ids[0])["status"] == producer.cancel(ids[1])["status"] == "cancelled"
    ended = same(twins, lambda s: s.cancel(ids[0]))
    assert ended[:2] == (APIError, 409)
    assert _steady(client.wait(ids[1], timeout=1)) == _steady(producer.wait(ids[1], timeout=1))
    answer = same(twins, lambda s: s.cancel_many([ids[0], "ghost"]))
    assert answer == {"cancelled": [], "not_cancellable": [ids[0]], "unknown": ["ghost"]}


def test_the_async_twins_raise_alike(manager: DevServer) -> None:
    import jobbers.examples  # noqa: F401

    async def refusals() -> list[tuple[type[BaseException], int, Any]]:
        out: list[tuple[type[BaseException], int, Any]] = []
        async with AsyncClient(manager.url) as client, AsyncProducer(manager.store) as producer:
            for source in (client, producer):
                for call in (source.submit("no.such.task"), source.cancel("ghost")):
                    try:
                        await call
                    except APIError as exc:
                        out.append((type(exc), exc.status_code, exc.detail))
        return out

    got = asyncio.run(refusals())
    assert len(got) == 4
    assert got[:2] == got[2:]
    assert [code for _, code, _ in got[:2]] == [404, 404]
