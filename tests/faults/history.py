"""What the clients were told: every submission sent to a Manager and its answer.

Clients choose task ids themselves, so a submission whose answer was lost (a 503, a reset, a
timeout) is sent again with the same ids: a repeat is idempotent. A task is *accepted* once a
Manager answered 201 for it; the checker holds the store to every accepted task.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobbers.ids import uuid7

#: Tasks per bulk submission.
BATCH = 50


@dataclass(frozen=True)
class Answer:
    manager: str
    ids: tuple[str, ...]
    sent: float
    answered: float
    #: HTTP status, or None when no answer came (refused, reset, timed out).
    status: int | None
    detail: str = ""


@dataclass
class History:
    answers: list[Answer] = field(default_factory=list)
    #: Task id -> when a Manager first answered that it was accepted (wall clock).
    accepted: dict[str, float] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)

    def record(self, answer: Answer) -> None:
        self.answers.append(answer)
        self.sent.update(answer.ids)
        if answer.status == 201:
            for task_id in answer.ids:
                self.accepted.setdefault(task_id, answer.answered)

    @property
    def unsure(self) -> set[str]:
        """Sent, never answered as accepted: they may or may not exist."""
        return self.sent - self.accepted.keys()

    def codes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.answers:
            key = str(a.status) if a.status is not None else "no answer"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def first_accepted_after(self, at: float) -> float | None:
        times = [a.answered for a in self.answers if a.status == 201 and a.sent >= at]
        return min(times) if times else None


def work_batches(
    count: int, *, ms: Iterator[int] | None = None, names: Sequence[str] = ("fault.work",)
) -> list[list[dict[str, Any]]]:
    """``count`` tasks, their names taken from ``names`` in turn."""
    durations = ms or itertools.cycle([1, 5, 10, 20, 2])
    cycle = itertools.cycle(names)
    tasks = [
        {"id": uuid7(), "name": next(cycle), "kwargs": {"ms": next(durations)}}
        for _ in range(count)
    ]
    return [tasks[i : i + BATCH] for i in range(0, len(tasks), BATCH)]


def long_bodies(per_kind: int, ms: int) -> list[dict[str, Any]]:
    """``per_kind`` async and as many sync bodies of ``ms`` each: what a fault should catch
    running."""
    return [
        {"id": uuid7(), "name": name, "kwargs": {"ms": ms}}
        for name in ("fault.work", "fault.sync_work")
        for _ in range(per_kind)
    ]


async def submit_paced(
    history: History,
    managers: Sequence[str],
    batches: Sequence[list[dict[str, Any]]],
    *,
    over: float,
    request_timeout: float = 5.0,
    retry_for: float = 60.0,
    parallel: int = 8,
) -> None:
    """Send ``batches`` spread evenly over ``over`` seconds, each until a Manager accepts it
    (for at most ``retry_for`` seconds after the last batch was due)."""
    start = time.monotonic()
    give_up = start + over + retry_for
    gate = asyncio.Semaphore(parallel)
    turn = itertools.count()
    limits = httpx.Limits(max_connections=parallel * len(managers))
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as http:

        async def one(i: int, batch: list[dict[str, Any]]) -> None:
            await asyncio.sleep(max(0.0, start + over * i / len(batches) - time.monotonic()))
            body = {"tasks": batch}
            ids = tuple(t["id"] for t in batch)
            while time.monotonic() < give_up:
                url = managers[next(turn) % len(managers)]
                async with gate:
                    answer = await _post(http, url, body, ids)
                history.record(answer)
                if answer.status == 201:
                    return
                await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, b) for i, b in enumerate(batches)))


async def _post(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], ids: tuple[str, ...]
) -> Answer:
    sent = time.time()
    try:
        response = await http.post(f"{url}/tasks/bulk", json=body)
    except httpx.HTTPError as exc:
        return Answer(url, ids, sent, time.time(), None, type(exc).__name__)
    detail = "" if response.status_code == 201 else response.text[:200]
    return Answer(url, ids, sent, time.time(), response.status_code, detail)
