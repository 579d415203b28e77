"""The checker: the clients' history, the bodies' journals and the final store, held against
each other.

- *lost*: accepted by a Manager, absent from the store at the end;
- *completed twice*: a task whose record holds two completed attempts, or whose change feed
  says ``completed`` twice;
- *late result accepted*: a completed attempt that is not the task's last one, or a result
  naming another attempt than the one recorded as completed (a fenced attempt's result landed);
- *bodies run twice*: tasks whose body started in two attempts (at-least-once execution), and
  of those, how many ran to their end twice;
- *unfinished*: accepted tasks not completed when the run was given up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jobbers.models import TERMINAL, Status, TaskRecord
from jobbers.store.base import Store, StoreUnavailable

from .history import History


@dataclass
class Journal:
    """Every body's ``s``/``e``/``c`` lines, by task id."""

    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, pattern: str = "*.jsonl") -> Journal:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for path in sorted(folder.glob(pattern)):
            for raw in path.read_text().splitlines():
                if raw:
                    line = json.loads(raw)
                    found[line["id"]].append(line)
        return cls(dict(found))

    def starts(self, task_id: str) -> list[dict[str, Any]]:
        return [x for x in self.lines.get(task_id, []) if x["e"] == "s"]

    def ends(self, task_id: str) -> list[dict[str, Any]]:
        return [x for x in self.lines.get(task_id, []) if x["e"] == "e"]


@dataclass
class Verdict:
    scenario: str
    backend: str
    injected: str
    tasks: int
    lost: int = 0
    completed_twice: int = 0
    late_accepted: int = 0
    bodies_twice: int = 0
    bodies_ended_twice: int = 0
    unfinished: int = 0
    recovery: float | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: Every lost id (``details`` keeps the first few).
    lost_ids: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("details", "lost_ids")}


async def wait_all_finished(store: Store, ids: list[str], timeout: float) -> float:
    """Poll until every id the store holds has ended (an accepted id it lacks is lost: nothing
    will bring it back); the seconds it took."""
    start = time.monotonic()
    pending = list(ids)
    while pending and time.monotonic() - start < timeout:
        try:
            found = await store.statuses(pending)
        except StoreUnavailable:
            await asyncio.sleep(0.5)
            continue
        pending = [t for t in pending if t in found and found[t] not in TERMINAL]
        if pending:
            await asyncio.sleep(0.25)
    return time.monotonic() - start


async def read_records(store: Store, ids: list[str]) -> dict[str, TaskRecord]:
    out: dict[str, TaskRecord] = {}
    for i in range(0, len(ids), 1000):
        out.update(await store.get(ids[i : i + 1000]))
    return out


async def completed_events(store: Store) -> Counter[str]:
    counts: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        events = await store.events(cursor, 5000)
        if not events:
            return counts
        counts.update(e.task_id for e in events if e.status is Status.COMPLETED)
        cursor = events[-1].cursor


def judge(
    verdict: Verdict,
    history: History,
    records: dict[str, TaskRecord],
    feed: Counter[str],
    journal: Journal,
) -> Verdict:
    accepted = list(history.accepted)
    verdict.tasks = len(accepted)
    lost = [t for t in accepted if t not in records]
    verdict.lost = len(lost)
    verdict.lost_ids = lost
    twice = [
        t
        for t, r in records.items()
        if sum(a.outcome == "completed" for a in r.attempts) > 1 or feed[t] > 1
    ]
    verdict.completed_twice = len(twice)
    late = [t for t, r in records.items() if _late_result(r)]
    verdict.late_accepted = len(late)
    many = [t for t in records if len({s["a"] for s in journal.starts(t)}) > 1]
    verdict.bodies_twice = len(many)
    verdict.bodies_ended_twice = sum(len(journal.ends(t)) > 1 for t in many)
    unfinished = [t for t in accepted if t in records and records[t].status is not Status.COMPLETED]
    verdict.unfinished = len(unfinished)
    verdict.details.update(
        lost=lost[:20],
        completed_twice=twice[:20],
        late=late[:20],
        unfinished={t: str(records[t].status) for t in unfinished[:20]},
        unsure=len(history.unsure),
        lost_attempts=sum(r.lost for r in records.values()),
        answers=history.codes(),
    )
    return verdict


def _late_result(record: TaskRecord) -> bool:
    done = [a for a in record.attempts if a.outcome == "completed"]
    if not done:
        return False
    last = max(a.number for a in record.attempts)
    result = record.result if isinstance(record.result, dict) else {}
    return (
        done[-1].number != last
        or result.get("a") != done[-1].number
        or result.get("w") != done[-1].worker
    )


def settled(verdict: Verdict) -> bool:
    """Nothing completed twice, no late result accepted, every present task completed."""
    return not (verdict.completed_twice or verdict.late_accepted or verdict.unfinished)


def clean(verdict: Verdict) -> bool:
    """:func:`settled`, and nothing accepted lost."""
    return settled(verdict) and not verdict.lost
