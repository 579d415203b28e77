"""The PostgreSQL store's schedules: the owner's spec and the firers' state in one row, changed
apart.

:func:`advance` is the firers' compare-and-set: one UPDATE that moves ``next_fire`` only from
the value the firer read. Concurrent firers of one occurrence queue on the row's lock, and each
one after the first re-checks the condition against the committed row (READ COMMITTED), finds
``next_fire`` moved, and changes nothing: exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from jobbers.compact_json import dumps
from jobbers.schedule import Schedule
from jobbers.store.postgres.steps import Conn

_COLUMNS = "id, spec, next_fire, last_fire, last_tasks"


def _schedule(r: asyncpg.Record) -> Schedule:
    return Schedule.from_parts(r["id"], r["spec"], r["next_fire"], r["last_fire"], r["last_tasks"])


async def read_all(conn: Conn) -> list[Schedule]:
    return [_schedule(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM schedules ORDER BY id")]


async def read_one(conn: Conn, schedule_id: str) -> Schedule | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM schedules WHERE id = $1", schedule_id)
    return None if r is None else _schedule(r)


async def save(conn: Conn, schedule: Schedule, create: bool) -> bool:
    """Insert (``create``) or update the spec and ``next_fire``; False when the id is taken (on
    create) or unknown (on update). The firing history is kept across updates."""
    if create:
        done = await conn.execute(
            "INSERT INTO schedules (id, spec, next_fire) VALUES ($1, $2, $3)"
            " ON CONFLICT (id) DO NOTHING",
            schedule.id,
            schedule.spec_json(),
            schedule.next_fire,
        )
        return done == "INSERT 0 1"
    done = await conn.execute(
        "UPDATE schedules SET spec = $1, next_fire = $2 WHERE id = $3",
        schedule.spec_json(),
        schedule.next_fire,
        schedule.id,
    )
    return done == "UPDATE 1"


async def delete(conn: Conn, schedule_id: str) -> bool:
    return await conn.execute("DELETE FROM schedules WHERE id = $1", schedule_id) == "DELETE 1"


async def advance(
    conn: Conn,
    schedule_id: str,
    expected: float,
    next_fire: float | None,
    fired_at: float | None,
    tasks: Sequence[str],
) -> bool:
    if fired_at is None:
        done = await conn.execute(
            "UPDATE schedules SET next_fire = $1 WHERE id = $2 AND next_fire = $3",
            next_fire,
            schedule_id,
            expected,
        )
    else:
        done = await conn.execute(
            "UPDATE schedules SET next_fire = $1, last_fire = $2, last_tasks = $3"
            " WHERE id = $4 AND next_fire = $5",
            next_fire,
            fired_at,
            dumps(list(tasks)),
            schedule_id,
            expected,
        )
    return done == "UPDATE 1"
