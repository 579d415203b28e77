"""Stopping asyncio tasks (the worker's helper loops, a store's listener) when a cancel gets lost
on the way."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from jobbers.cancelling import cancel_until_done

pytestmark = pytest.mark.anyio


async def test_a_helper_that_loses_its_cancel_is_cancelled_again() -> None:
    """Python 3.11's ``asyncio.wait_for`` can swallow a cancel (redis-py sends every command
    through one); the helper loop then runs on, and one cancel would never stop the worker."""
    cancels = 0

    async def loses_the_first_cancel() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise

    helper = asyncio.create_task(loses_the_first_cancel())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done([helper]), 10)
    assert helper.cancelled()
    assert cancels == 2


async def test_a_task_that_never_stops_is_given_up_after_the_bound() -> None:
    """A store closing at shutdown must not hang on a listener that ignores every cancel."""
    stop = asyncio.Event()

    async def ignores_cancels() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    stubborn = asyncio.create_task(ignores_cancels())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done([stubborn], within=0.3), 10)
    assert not stubborn.done()
    stop.set()
    stubborn.cancel()
    await asyncio.wait_for(stubborn, 10)
