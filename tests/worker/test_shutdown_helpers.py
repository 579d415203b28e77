"""Stopping the worker's helper loops when a cancel gets lost on the way."""

from __future__ import annotations

import asyncio

import pytest

from jobbers.worker.loop import _cancel_until_done

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
    await asyncio.wait_for(_cancel_until_done([helper]), 10)
    assert helper.cancelled()
    assert cancels == 2
