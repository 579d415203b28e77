"""The provider resolver on its own: once per attempt, teardown order, overrides, circles."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from jobbers.current import CurrentTask, current_task, reset_current, set_current
from jobbers.injection import Depends, Resolver, injected_params
from jobbers.testing import override

pytestmark = pytest.mark.anyio

calls: list[str] = []


def config() -> dict[str, str]:
    calls.append(f"config in {threading.current_thread().name}")
    return {"dsn": "real"}


def connection(cfg: dict[str, str] = Depends(config)) -> Iterator[str]:
    calls.append("open")
    try:
        yield f"conn to {cfg['dsn']}"
    finally:
        calls.append("close")


async def cache(cfg: dict[str, str] = Depends(config)) -> str:
    return f"cache for {cfg['dsn']}"


def task_body(conn: str = Depends(connection), c: str = Depends(cache), plain: int = 1) -> None:
    """Stands for a task function: only its signature is read."""


async def test_each_provider_runs_once_and_tears_down_after() -> None:
    calls.clear()
    params = injected_params(task_body)
    assert set(params) == {"conn", "c"}
    resolver = Resolver()
    values = await resolver.resolve(params)
    assert values == {"conn": "conn to real", "c": "cache for real"}
    assert len([c for c in calls if c.startswith("config")]) == 1  # shared by both
    assert "MainThread" not in calls[0]  # a sync provider runs in a thread
    assert calls[-1] == "open"
    await resolver.aclose(ValueError, ValueError("boom"), None)
    assert calls[-1] == "close"


async def test_an_override_replaces_a_provider_until_undone() -> None:
    def fake_config() -> dict[str, str]:
        return {"dsn": "fake"}

    with override(config, fake_config):
        resolver = Resolver()
        assert await resolver.resolve(injected_params(task_body)) == {
            "conn": "conn to fake",
            "c": "cache for fake",
        }
        await resolver.aclose()
    resolver = Resolver()
    assert (await resolver.resolve(injected_params(task_body)))["c"] == "cache for real"
    await resolver.aclose()


async def test_providers_in_a_circle_are_refused() -> None:
    def a(b: int = Depends(lambda: 0)) -> int:
        return b

    def first(second: int = Depends(a)) -> int:
        return second

    # a provider that depends on itself through an override
    with override(a, first), pytest.raises(TypeError, match="circle"):
        await Resolver().resolve({"x": Depends(a)})


def test_depends_needs_a_callable() -> None:
    with pytest.raises(TypeError):
        Depends(42)  # type: ignore[arg-type]


def test_current_task_outside_a_task_raises_and_inside_answers() -> None:
    with pytest.raises(RuntimeError):
        current_task()
    token = set_current(CurrentTask("t1", 2, "some.task"))
    try:
        assert current_task() == CurrentTask("t1", 2, "some.task", None)
    finally:
        reset_current(token)
