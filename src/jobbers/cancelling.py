"""Stopping asyncio tasks for good, which one ``cancel()`` does not always do on Python 3.11.

``asyncio.wait_for`` returns its inner call's result instead of raising when the cancel lands just
as that call finishes, and redis-py sends every command through such a ``wait_for``. A loop that
loses its cancel that way runs on: a worker whose helper renews forever never exits, and a store
whose change listener keeps reading keeps ``asyncio.run`` from returning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any


async def cancel_until_done(
    tasks: Iterable[asyncio.Task[Any]], within: float | None = None
) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that run on; give up after
    ``within`` seconds (None: never), leaving the stragglers to whoever owns them."""
    deadline = None if within is None else time.monotonic() + within
    pending = {t for t in tasks if not t.done()}
    while pending:
        if deadline is not None and time.monotonic() >= deadline:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
