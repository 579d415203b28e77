"""Sync task bodies in threads, and the slots that abandoned threads keep holding.

A thread cannot be stopped: a sync task that is cancelled or times out is abandoned, its result
discarded, but its body runs on. If the worker freed its slot at once, ``--concurrency`` would
bound attempts, not work: cancelling 200 ``time.sleep`` tasks on a worker of 20 slots would leave
220 bodies running. So an abandoned thread keeps its slot until its body returns, and says so
once in the log. Tasks that must really stop on cancel or timeout run in a child process instead
(``@task(isolate="process")``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")

log = logging.getLogger("jobbers.worker")


class SyncThreads:
    """Starts one daemon thread per sync body and counts the abandoned ones still running.

    Not a ThreadPoolExecutor: an abandoned thread must not hold a pool thread that the next task
    needs, nor keep the interpreter from exiting (executor threads are joined at exit). A thread
    start costs tens of microseconds, nothing next to a store round trip.
    """

    def __init__(self, on_release: Callable[[], None] | None = None) -> None:
        self._on_release = on_release
        #: Abandoned bodies still running: each holds a slot until it returns.
        self.abandoned = 0

    def run(self, fn: Callable[[], R], label: str = "") -> asyncio.Future[R]:
        """Run ``fn`` in a fresh daemon thread; the future's result is its return value.

        Cancelling the future abandons the thread: :attr:`abandoned` counts it until ``fn``
        returns, then ``on_release`` is called. All bookkeeping happens on the event loop.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        context = contextvars.copy_context()
        state = {"finished": False, "abandoned": False}

        def on_done(done: asyncio.Future[R]) -> None:
            if done.cancelled() and not state["finished"]:
                state["abandoned"] = True
                self.abandoned += 1
                log.warning(
                    "%s: abandoned thread still running, slot held until its body returns",
                    label or "sync task",
                )

        def on_finished() -> None:
            state["finished"] = True
            if state["abandoned"]:
                self.abandoned -= 1
                log.info("%s: abandoned thread ended, slot freed", label or "sync task")
                if self._on_release is not None:
                    self._on_release()

        def settle(value: R | None, exc: BaseException | None) -> None:
            if not future.done():
                if exc is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(value)  # type: ignore[arg-type]
            on_finished()

        def target() -> None:
            value: R | None = None
            error: BaseException | None = None
            try:
                value = context.run(fn)
            except BaseException as exc:
                error = exc
            # RuntimeError: the loop closed while an abandoned thread was still running.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(functools.partial(settle, value, error))

        future.add_done_callback(on_done)
        threading.Thread(target=target, name="jobbers-sync-task", daemon=True).start()
        return future
