"""An attempt whose kwargs do not bind to the function fails once, whatever its retry budget."""

from __future__ import annotations

import pytest

from jobbers.models import Status
from jobbers.params import binding_problem
from jobbers.store.base import Store

from .conftest import Spawn
from .support import new_task, policy_of, submit, wait_statuses

pytestmark = pytest.mark.anyio


async def test_kwargs_that_do_not_bind_are_never_retried(store: Store, spawn: Spawn) -> None:
    worker = spawn()
    await worker.registered(store)
    policy = policy_of("wt.mark", max_retries=3, base_delay=0.0)
    (task_id,) = await submit(store, [new_task("wt.mark", policy=policy, lgo="typo")])
    record = (await wait_statuses(store, [task_id], {Status.DEAD}, timeout=20))[task_id]
    assert len(record.attempts) == 1
    assert record.retries == 0
    assert record.error is not None
    assert record.error.type == "InvalidArguments"
    assert "unexpected lgo; missing log" in record.error.message
    assert "typo" not in record.error.message


class _Unhashable:
    """A callable task body that cannot be a cache key."""

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, log: str) -> None:
        return None


def test_binding_is_checked_the_same_for_every_call_and_unhashable_callables() -> None:
    def body(log: str) -> None:
        return None

    for fn in (body, body, _Unhashable()):
        assert binding_problem(fn, {"log": "x"}) is None
        assert binding_problem(fn, {"lgo": "x"}) == "unexpected lgo; missing log"
