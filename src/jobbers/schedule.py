"""A schedule: what to submit (its target), when (a cron expression in a time zone), and what to do
after downtime or while its previous run is still going.

The store keeps two parts apart: the spec, which only its owner changes (create, update, enable),
and the firing state (``next_fire``, ``last_fire``, ``last_tasks``), which firers move forward with
a compare-and-set on ``next_fire``. An update therefore never loses to a firer, nor a firer to an
update of another field.

A target is ``{"task": name, "kwargs": {...}, "queue": ..., "priority": ...}``. It is a mapping
with one kind key so that another kind can be added beside it (``{"workflow": graph}``): the kinds
are listed in :data:`TARGET_KINDS` and each is submitted by its own function in
:mod:`jobbers.firing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from jobbers.cron import CronError, parse, zone

Misfire = Literal["skip", "run_once"]
Concurrency = Literal["always", "skip"]
MISFIRES: tuple[Misfire, ...] = ("skip", "run_once")
CONCURRENCIES: tuple[Concurrency, ...] = ("always", "skip")
#: The keys a target may be named by; exactly one per target.
TARGET_KINDS = ("task", "workflow")
#: An occurrence later than this (seconds) is a misfire unless the schedule says otherwise.
DEFAULT_MISFIRE_GRACE = 60.0


@dataclass(frozen=True)
class Schedule:
    id: str
    cron: str
    #: IANA name; the cron expression is read on this zone's wall clock.
    timezone: str
    #: ``{"task": name, "kwargs": {...}, "queue": ..., "priority": ...}``.
    target: dict[str, Any]
    enabled: bool = True
    #: After downtime: ``skip`` the occurrences missed, or ``run_once`` for all of them.
    misfire: Misfire = "skip"
    #: How late (seconds) an occurrence may still fire as itself.
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    #: ``skip`` an occurrence while what the previous one submitted is unfinished.
    concurrency: Concurrency = "always"
    created_at: float = 0.0
    updated_at: float = 0.0
    #: Epoch seconds of the next occurrence; None while disabled (or if it never fires again).
    next_fire: float | None = None
    last_fire: float | None = None
    #: What the last fired occurrence submitted: its task ids.
    last_tasks: tuple[str, ...] = field(default_factory=tuple)

    def spec_json(self) -> str:
        """The owner's part, as the store keeps it."""
        return json.dumps(
            {
                "cron": self.cron,
                "timezone": self.timezone,
                "target": self.target,
                "enabled": self.enabled,
                "misfire": self.misfire,
                "misfire_grace": self.misfire_grace,
                "concurrency": self.concurrency,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_parts(
        cls,
        schedule_id: str,
        spec: str,
        next_fire: float | None,
        last_fire: float | None,
        last_tasks: str | None,
    ) -> Schedule:
        data = json.loads(spec)
        return cls(
            id=schedule_id,
            cron=data["cron"],
            timezone=data["timezone"],
            target=data["target"],
            enabled=bool(data["enabled"]),
            misfire=data["misfire"],
            misfire_grace=float(data["misfire_grace"]),
            concurrency=data["concurrency"],
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
            next_fire=next_fire,
            last_fire=last_fire,
            last_tasks=tuple(json.loads(last_tasks)) if last_tasks else (),
        )

    def kind(self) -> str:
        return target_kind(self.target)

    def following(self, after: float) -> float | None:
        """The first occurrence strictly after ``after``."""
        return parse(self.cron).next_after(after, zone(self.timezone))

    def upcoming(self, count: int, after: float) -> list[float]:
        if not self.enabled:
            return []
        return parse(self.cron).next_times(after, zone(self.timezone), count)

    def armed(self, now: float) -> Schedule:
        """This schedule with ``next_fire`` set from ``now`` (None while disabled)."""
        return replace(self, next_fire=self.following(now) if self.enabled else None)


def target_kind(target: dict[str, Any]) -> str:
    kinds = [k for k in TARGET_KINDS if k in target]
    if len(kinds) != 1:
        raise ValueError(f"a target names exactly one of {', '.join(TARGET_KINDS)}")
    return kinds[0]


def check_timing(cron: str, timezone: str, now: float) -> float:
    """The first fire time after ``now``; :class:`CronError` if the expression, the zone, or the
    pair (an expression that never fires) cannot be used."""
    first = parse(cron).next_after(now, zone(timezone))
    if first is None:
        raise CronError(f"{cron!r} never fires")
    return first
